// Templates: the HTML editor of the template form (the plain editor compose uses, over the same
// markup), and in compose the filling of subject and body after a template was chosen (the
// server's #template-fill fragment carries them). Nothing here is trusted: the server sanitises.
(function () {
  function editor(form, sourceId, isHtml) {
    var area = form.querySelector(".editor-area");
    var tools = form.querySelector(".editor-tools");
    var body = form.querySelector("textarea[name=body]");
    var source = document.getElementById(sourceId);
    if (!area || !tools || !body || !source) { return null; }
    // The toolbar's display rule would override a bare `hidden`: style.display decides.
    function show(on) {
      area.hidden = !on; tools.hidden = !on; body.hidden = on;
      tools.style.display = on ? "" : "none";
    }
    function sync() { if (!area.hidden) { body.value = area.innerHTML; } }
    area.innerHTML = source.innerHTML;
    show(isHtml());
    area.addEventListener("input", sync);
    form.addEventListener("submit", sync);
    tools.addEventListener("click", function (evt) {
      var button = evt.target.closest("button[data-command]");
      if (!button) { return; }
      var command = button.dataset.command, value = null;
      if (command === "createLink") {
        value = window.prompt("Link address (https://…)");
        if (!value || !/^(https?:|mailto:)/i.test(value)) { return; }
      }
      area.focus();
      document.execCommand(command, false, value);
      sync();
    });
    return { area: area, body: body, show: show, sync: sync };
  }

  var templateForm = document.getElementById("template-form");
  if (templateForm && !templateForm.dataset.editor) {
    templateForm.dataset.editor = "1";
    var format = templateForm.querySelector("select[name=format]");
    var ed = editor(templateForm, "template-editor-html", function () { return format.value === "html"; });
    if (ed) {
      format.addEventListener("change", function () {
        if (format.value === "html") { ed.area.innerHTML = ed.body.value; ed.show(true); }
        else { ed.sync(); ed.show(false); }
      });
    }
  }

  // Compose: put the rendered template into the subject and the editor (or the textarea).
  document.body.addEventListener("htmx:afterSwap", function (evt) {
    var fill = document.getElementById("template-fill");
    var form = document.getElementById("compose");
    if (!fill || !form || !fill.dataset.filled || !fill.contains(evt.detail.elt) && evt.detail.elt !== fill) { return; }
    delete fill.dataset.filled;
    var subject = form.querySelector("input[name=subject]");
    var html = document.getElementById("template-fill-html");
    var text = document.getElementById("template-fill-text");
    var area = form.querySelector(".editor-area");
    var body = form.querySelector("textarea[name=body]");
    var again = document.getElementById("template-again");
    var renderedFor = fill.querySelector("input[name=template_parent]");
    if (again && renderedFor) { again.dataset.parent = renderedFor.value; again.hidden = true; }
    if (subject) { subject.value = fill.dataset.subject || ""; }
    if (area && !area.hidden && html) {
      area.innerHTML = html.innerHTML;
      area.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (body && text) {
      body.value = text.value;
    }
  });
  // After the record changes, offer to render the template again.
  document.body.addEventListener("change", function (evt) {
    var form = document.getElementById("compose");
    var again = document.getElementById("template-again");
    if (!form || !again || !form.contains(evt.target)) { return; }
    var type = form.querySelector("input[name=parent_type], select[name=parent_type]");
    var id = form.querySelector("input[name=parent_id], select[name=parent_id]");
    // The same "Type:id" (or "" for none) the server writes into data-parent.
    var now = type && type.value ? type.value + ":" + (id ? id.value : "") : "";
    again.hidden = now === (again.dataset.parent || "");
  });
})();
