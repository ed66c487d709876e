// Templates: the template form's editor (editor.js, as compose's, switched between HTML and
// plain text), and in compose the filling of subject and body after a template was chosen (the
// server's #template-fill fragment carries them). Nothing here is trusted: the server sanitises.
(function () {
  // Plain text from the editor's HTML, as the outgoing mail's text part is made
  // (crm.mail.compose.html_to_text): paragraphs apart, <br> a line break, list items "- ",
  // links "text (url)".
  function htmlToText(root) {
    var out = [], line = "";
    var blocks = /^(P|DIV|H[1-6]|UL|OL|LI|BLOCKQUOTE|PRE|TABLE|TR|SECTION|ARTICLE|HR)$/;
    function end(blank) {
      out.push(line.replace(/[ \t]+$/, "")); line = "";
      if (blank && out[out.length - 1] !== "") { out.push(""); }
    }
    function walk(node) {
      if (node.nodeType === 3) {
        var text = node.nodeValue.replace(/[ \t\n\r\f\u00a0]+/g, " ");
        line += line && !/ $/.test(line) ? text : text.replace(/^ /, "");
        return;
      }
      if (node.nodeType !== 1 || /^(SCRIPT|STYLE|TEMPLATE)$/.test(node.tagName)) { return; }
      if (node.tagName === "BR") { end(false); return; }
      var block = blocks.test(node.tagName);
      if (block && line) { end(false); }
      if (node.tagName === "LI") { line = "- "; }
      Array.prototype.forEach.call(node.childNodes, walk);
      var href = node.tagName === "A" && node.getAttribute("href");
      if (href && href !== node.textContent) { line += " (" + href + ")"; }
      if (block) { end(node.tagName !== "LI" && node.tagName !== "DIV" && node.tagName !== "TR"); }
    }
    walk(root);
    if (line) { end(false); }
    return out.join("\n").replace(/\n{3,}/g, "\n\n").trim();
  }

  // Plain text into the HTML editor: escaped, paragraphs at blank lines, <br> at line breaks.
  function textToHtml(text) {
    return text.replace(/\r\n/g, "\n").split(/\n[ \t]*\n/).filter(function (p) { return p.trim(); })
      .map(function (p) {
        var holder = document.createElement("p");
        holder.textContent = p.replace(/^\n+|\n+$/g, "");
        return "<p>" + holder.innerHTML.replace(/\n/g, "<br>") + "</p>";
      }).join("");
  }

  // The template form: HTML or plain text, switched by its format select.
  window.crmEditor.eachForm("template-form", function (templateForm) {
    var source = document.getElementById("template-editor-html");
    var format = templateForm.querySelector("select[name=format]");
    var ed = source && window.crmEditor.editor(templateForm, { link: function (value) {
      return !!value && /^(https?:|mailto:)/i.test(value);
    } });
    if (!ed) { return; }
    ed.area.innerHTML = source.innerHTML;
    ed.show(format.value === "html");
    format.addEventListener("change", function () {
      if (format.value === "html") { ed.area.innerHTML = textToHtml(ed.body.value); ed.show(true); }
      else { ed.body.value = htmlToText(ed.area); ed.show(false); }
    });
  });

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
    var to = form.querySelector("input[name=to]");
    if (again && renderedFor) { again.dataset.parent = renderedFor.value; again.hidden = true; }
    if (again && to) { again.dataset.to = firstRecipient(to.value); }
    if (subject) { subject.value = fill.dataset.subject || ""; }
    if (area && !area.hidden && html) {
      area.innerHTML = html.innerHTML;
      area.dispatchEvent(new Event("input", { bubbles: true }));
    } else if (body && text) {
      body.value = text.value;
    }
  });
  // The first entry of the To field, compared loosely: the person it names is in the context.
  function firstRecipient(value) {
    return (value.split(/[,;]/)[0] || "").trim().toLowerCase();
  }
  // After the record or the first recipient changes, offer to render the template again.
  document.body.addEventListener("change", function (evt) {
    var form = document.getElementById("compose");
    var again = document.getElementById("template-again");
    if (!form || !again || !form.contains(evt.target)) { return; }
    // Only the record and the recipients count (not, say, the record search being typed in).
    if (!/^(parent_type|parent_id|to)$/.test(evt.target.name || "")) { return; }
    var type = form.querySelector("input[name=parent_type], select[name=parent_type]");
    var id = form.querySelector("input[name=parent_id], select[name=parent_id]");
    // The same "Type:id" (or "" for none) the server writes into data-parent.
    var now = type && type.value ? type.value + ":" + (id ? id.value : "") : "";
    var to = form.querySelector("input[name=to]");
    var sameTo = again.dataset.to === undefined || !to || firstRecipient(to.value) === again.dataset.to;
    again.hidden = now === (again.dataset.parent || "") && sameTo;
  });
})();
