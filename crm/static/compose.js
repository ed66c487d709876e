// The HTML editor of the compose form: a contenteditable area mirrored into the form's body
// field. Without this file the form posts its plain textarea (format "text"); the server
// sanitises whatever HTML arrives, so nothing here is trusted.
// The layout loads it on every page: compose may arrive by a boosted link (a record's "Create
// e-mail"), whose scripts htmx does not run, so the editor starts on first load and again on
// htmx's load event; the form's data-editor flag keeps it from starting twice.
(function () {
  function start() {
    var form = document.getElementById("compose");
    if (!form || form.dataset.editor) { return; }
    form.dataset.editor = "1";
    var area = form.querySelector(".editor-area");
    var tools = form.querySelector(".editor-tools");
    var source = document.getElementById("editor-html");
    var body = form.querySelector("textarea[name=body]");
    var format = form.querySelector("input[name=format]");
    if (!area || !source || !body || !format) { return; }
    // A quoted or forwarded mail may show its inline images by cid:, which the browser cannot
    // load (and the page's policy forbids): in the editor they are placeholders, their cid: kept
    // aside and put back in what is saved. The work is done in <template>s, whose images never load.
    var loaded = document.createElement("template");
    loaded.innerHTML = source.innerHTML;
    Array.prototype.forEach.call(loaded.content.querySelectorAll("img[src]"), function (img) {
      if (/^cid:/i.test(img.getAttribute("src"))) {
        img.setAttribute("data-cid-src", img.getAttribute("src"));
        img.removeAttribute("src");
      }
    });
    area.appendChild(loaded.content);
    area.hidden = false; tools.hidden = false; body.hidden = true; format.value = "html";
    // An empty paragraph (the line above a signature) has no height and takes no caret: a <br>
    // makes it a line to write on.
    Array.prototype.forEach.call(area.querySelectorAll("p, div"), function (block) {
      if (!block.textContent && !block.querySelector("br, img")) {
        block.appendChild(document.createElement("br"));
      }
    });
    var to = form.querySelector("input[name=to]");
    // The record can be removed here (another one is chosen from its own page).
    var clear = document.getElementById("clear-parent");
    if (clear) {
      clear.hidden = false;
      clear.addEventListener("click", function () {
        var type = form.querySelector("input[name=parent_type]");
        form.querySelector("input[name=parent_id]").value = "";
        type.value = "";
        var badge = document.getElementById("compose-parent");
        if (badge) { badge.className = "muted"; badge.textContent = "none"; }
        clear.hidden = true;
        type.dispatchEvent(new Event("change", { bubbles: true }));
      });
    }
    if (form.dataset.fresh) {
      // A new reply or forward opens with an empty line above the quote, the caret on it, as
      // in every mail client (otherwise what is typed runs into the "wrote:" line).
      var first = area.firstElementChild;
      if (first && (first.textContent || "").trim()) {
        var line = document.createElement("p");
        line.appendChild(document.createElement("br"));
        area.insertBefore(line, first);
      }
      if (to && !to.value) {
        to.focus();
      } else {
        area.focus();
        var range = document.createRange();
        range.setStart(area.firstElementChild || area, 0);
        range.collapse(true);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    }
    function html() {
      var saved = document.createElement("template");
      saved.innerHTML = area.innerHTML;
      Array.prototype.forEach.call(saved.content.querySelectorAll("img[data-cid-src]"), function (img) {
        img.setAttribute("src", img.getAttribute("data-cid-src"));
        img.removeAttribute("data-cid-src");
      });
      return saved.innerHTML;
    }
    function sync() { body.value = html(); }
    form.composeSync = function () { sync(); return body.value; };
    area.addEventListener("input", sync);
    form.addEventListener("submit", sync);
    tools.addEventListener("click", function (evt) {
      var button = evt.target.closest("button[data-command]");
      if (!button) { return; }
      var command = button.dataset.command, value = null;
      if (command === "createLink") {
        value = window.prompt("Link address (https://…)");
        if (!value) { return; }
      }
      area.focus();
      document.execCommand(command, false, value);
      sync();
    });
    sync();
  }

  // Registered once (the body outlives boosted swaps); it finds the form of the moment.
  document.addEventListener("htmx:configRequest", function (evt) {
    // Only the saves (POST) carry the body; an address suggestion (GET) must not put the
    // whole message into its URL.
    var form = document.getElementById("compose");
    if (form && form.composeSync && form.contains(evt.detail.elt) && evt.detail.verb === "post") {
      evt.detail.parameters["body"] = form.composeSync();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  if (window.htmx) { window.htmx.onLoad(start); }
})();
