// Small progressive enhancements; the app works without this file.
document.addEventListener("htmx:confirm", function (evt) {
  var q = evt.detail.elt && evt.detail.elt.getAttribute("data-confirm");
  if (q) { evt.preventDefault(); if (window.confirm(q)) { evt.detail.issueRequest(true); } }
});
