// The HTML editor of the compose form (compose.js) and the template form (templates.js): a
// contenteditable area under a toolbar, mirrored into the form's body textarea, which stays the
// editor without JavaScript. Nothing here is trusted: the server sanitises what is posted.
// Loaded by the layout before the two, on every page: a form reached by a boosted link runs no
// script of its own, so each form starts on first load or on htmx's load event, once.
(function () {
  // options.html: the HTML to post (default the area's); options.link: whether a link address
  // typed into the prompt may be used (default any).
  function editor(form, options) {
    options = options || {};
    var area = form.querySelector(".editor-area");
    var tools = form.querySelector(".editor-tools");
    var body = form.querySelector("textarea[name=body]");
    if (!area || !tools || !body) { return null; }
    var html = options.html || function () { return area.innerHTML; };
    var linkOk = options.link || function (value) { return !!value; };
    // The toolbar's display rule would override a bare `hidden`: style.display decides.
    function show(on) {
      area.hidden = !on; tools.hidden = !on; body.hidden = on;
      tools.style.display = on ? "" : "none";
    }
    function sync() { if (!area.hidden) { body.value = html(); } }
    area.addEventListener("input", sync);
    form.addEventListener("submit", sync);
    tools.addEventListener("click", function (evt) {
      var button = evt.target.closest("button[data-command]");
      if (!button) { return; }
      var command = button.dataset.command, value = null;
      if (command === "createLink") {
        value = window.prompt("Link address (https://…)");
        if (!linkOk(value)) { return; }
      }
      area.focus();
      document.execCommand(command, false, value);
      sync();
    });
    return { area: area, tools: tools, body: body, show: show, sync: sync };
  }

  // start(form) runs once per form with this id: the form's data-editor flag says it ran.
  function eachForm(id, start) {
    function run() {
      var form = document.getElementById(id);
      if (!form || form.dataset.editor) { return; }
      form.dataset.editor = "1";
      start(form);
    }
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", run);
    } else {
      run();
    }
    if (window.htmx) { window.htmx.onLoad(run); }
  }

  window.crmEditor = { editor: editor, eachForm: eachForm };
})();
