// The compose form: its HTML editor (editor.js) with cid: images kept aside, the caret of a new
// reply, and the Record field (remove the record, or find and choose another with htmx).
// Without this file the form posts its plain textarea (format "text") and keeps its record; the
// server sanitises whatever HTML arrives, so nothing here is trusted.
(function () {
  function start(form) {
    var source = document.getElementById("editor-html");
    var format = form.querySelector("input[name=format]");
    var area = form.querySelector(".editor-area");
    if (!area || !source || !format) { return; }
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
    var ed = window.crmEditor.editor(form, { html: html });
    if (!ed) { return; }
    ed.show(true); format.value = "html";
    // An empty paragraph (the line above a signature) has no height and takes no caret: a <br>
    // makes it a line to write on.
    Array.prototype.forEach.call(area.querySelectorAll("p, div"), function (block) {
      if (!block.textContent && !block.querySelector("br, img")) {
        block.appendChild(document.createElement("br"));
      }
    });
    if (form.dataset.fresh) { caret(form, area); }
    form.composeSync = function () { ed.sync(); return ed.body.value; };
    ed.sync();

    function html() {
      var saved = document.createElement("template");
      saved.innerHTML = area.innerHTML;
      Array.prototype.forEach.call(saved.content.querySelectorAll("img[data-cid-src]"), function (img) {
        img.setAttribute("src", img.getAttribute("data-cid-src"));
        img.removeAttribute("data-cid-src");
      });
      return saved.innerHTML;
    }
  }

  // A new reply or forward opens with an empty line above the quote, the caret on it, as in
  // every mail client (otherwise what is typed runs into the "wrote:" line).
  function caret(form, area) {
    var to = form.querySelector("input[name=to]");
    var first = area.firstElementChild;
    if (first && (first.textContent || "").trim()) {
      var line = document.createElement("p");
      line.appendChild(document.createElement("br"));
      area.insertBefore(line, first);
    }
    if (to && !to.value) { to.focus(); return; }
    area.focus();
    var range = document.createRange();
    range.setStart(area.firstElementChild || area, 0);
    range.collapse(true);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // The Record field, as loaded or as swapped in after a choice: its controls need this file.
  function record() {
    var field = document.getElementById("compose-record");
    if (!field) { return; }
    var clear = document.getElementById("clear-parent");
    if (clear) { clear.hidden = false; }
    field.querySelector(".record-picker").hidden = false;
    if (field.dataset.chosen) {
      // Another record: templates.js then offers to render the template again.
      delete field.dataset.chosen;
      changed(field);
    }
  }
  function changed(field) {
    field.querySelector("input[name=parent_type]").dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Registered once (the body outlives boosted swaps); they find the form of the moment.
  document.addEventListener("click", function (evt) {
    var clear = evt.target.closest("#clear-parent");
    var field = document.getElementById("compose-record");
    if (!clear || !field) { return; }
    // The mail then goes without a record (and its placeholders).
    field.querySelector("input[name=parent_type]").value = "";
    field.querySelector("input[name=parent_id]").value = "";
    var badge = document.getElementById("compose-parent");
    if (badge) { badge.className = "muted"; badge.textContent = "none"; }
    clear.hidden = true;
    changed(field);
  });
  document.addEventListener("mousedown", function (evt) {
    // A result takes no focus from the search on mousedown, as the options of an autocomplete:
    // focusing it would scroll the page (at its end) and the click would miss it.
    if (evt.target.closest && evt.target.closest("#compose-record-choices .record-choice")) {
      evt.preventDefault();
    }
  });
  document.addEventListener("keydown", function (evt) {
    // Enter in the record search searches now; it must not send the mail (the form's first button).
    var picker = evt.key === "Enter" && evt.target.closest && evt.target.closest("#compose-record .record-picker");
    if (!picker) { return; }
    evt.preventDefault();
    if (window.htmx) { window.htmx.trigger(picker, "input"); }
  });
  document.addEventListener("htmx:configRequest", function (evt) {
    // Only the saves (POST) carry the body; an address suggestion (GET) must not put the
    // whole message into its URL, and choosing a record needs none.
    var form = document.getElementById("compose");
    var elt = evt.detail.elt;
    if (form && form.composeSync && form.contains(elt) && evt.detail.verb === "post" &&
        !elt.closest("#compose-record")) {
      evt.detail.parameters["body"] = form.composeSync();
    }
  });
  window.crmEditor.eachForm("compose", start);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", record);
  } else {
    record();
  }
  if (window.htmx) { window.htmx.onLoad(record); }
})();
