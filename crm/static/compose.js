// The HTML editor of the compose form: a contenteditable area mirrored into the form's body
// field. Without this file the form posts its plain textarea (format "text"); the server
// sanitises whatever HTML arrives, so nothing here is trusted.
(function () {
  var form = document.getElementById("compose");
  if (!form || form.dataset.editor) { return; }
  form.dataset.editor = "1";
  var area = form.querySelector(".editor-area");
  var tools = form.querySelector(".editor-tools");
  var source = document.getElementById("editor-html");
  var body = form.querySelector("textarea[name=body]");
  var format = form.querySelector("input[name=format]");
  if (!area || !source || !body || !format) { return; }
  area.innerHTML = source.innerHTML;
  area.hidden = false; tools.hidden = false; body.hidden = true; format.value = "html";
  function sync() { body.value = area.innerHTML; }
  area.addEventListener("input", sync);
  form.addEventListener("submit", sync);
  document.body.addEventListener("htmx:configRequest", function (evt) {
    if (form.contains(evt.detail.elt)) { sync(); evt.detail.parameters["body"] = body.value; }
  });
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
})();
