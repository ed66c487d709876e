// The mail client's keyboard shortcuts, select-all and drag-and-drop onto folders.
// Everything is delegated from `document`, so it keeps working after htmx swaps; without this
// file every action is still a plain form or link.
(function () {
  "use strict";

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#rows tr.mailrow")); }
  function current() { return document.querySelector("#rows tr.mailrow.cursor"); }

  function rowById(id) { return id && document.querySelector('#rows tr.mailrow[data-id="' + id + '"]'); }

  // While an action's new list is on its way, the cursor lives in `kept`: htmx resets the
  // rows' classes when the swap settles, so keys pressed meanwhile must not be lost.
  function cursorRow() { return (kept && rowById(kept.id)) || current(); }

  function moveCursor(step) {
    var all = rows();
    if (!all.length) { return; }
    var i = all.indexOf(cursorRow());
    var next = all[Math.max(0, Math.min(all.length - 1, i < 0 ? 0 : i + step))];
    all.forEach(function (r) { r.classList.remove("cursor"); });
    next.classList.add("cursor");
    next.scrollIntoView({block: "nearest"});
    if (kept) { kept = {id: next.getAttribute("data-id"), index: all.indexOf(next)}; }
  }

  function csrfHeaders() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}"); }
    catch (e) { return {}; }
  }

  function folderKey() {
    var box = document.getElementById("mailbox");
    var key = box ? box.getAttribute("data-folder") : "inbox";
    return key === "search" ? "inbox" : key;
  }

  // Checked rows, or else the row under the cursor.
  function selectedIds(extra) {
    var ids = rows().filter(function (r) { return r.querySelector("input[name=ids]:checked"); })
      .map(function (r) { return r.getAttribute("data-id"); });
    if (!ids.length && extra) { ids = [extra]; }
    return ids;
  }

  function post(url, values) {
    values.folder = folderKey();
    return htmx.ajax("POST", url, {
      target: "#list", select: "#list", swap: "outerHTML", values: values, headers: csrfHeaders()
    });
  }

  // A list swap (after an action) keeps the cursor on the same mail, or at the same place.
  var kept = null;
  var inFlight = 0;  // actions whose new list has not settled yet (keys may outrun them)
  function keepCursor() {
    var row = cursorRow();
    kept = row ? {id: row.getAttribute("data-id"), index: rows().indexOf(row)} : null;
  }
  document.addEventListener("htmx:afterSettle", function (evt) {
    // Only the list's own swap: the folder pane refreshes on the same action and may settle first.
    var el = evt.target;
    var isList = el && (el.id === "list" || (el.querySelector && el.querySelector("#rows")));
    if (!kept || !isList || !document.getElementById("rows")) { return; }
    var all = rows();
    var row = rowById(kept.id) || all[Math.min(kept.index, all.length - 1)];
    all.forEach(function (r) { r.classList.remove("cursor"); });
    if (row) { row.classList.add("cursor"); }
    inFlight = Math.max(0, inFlight - 1);
    if (!inFlight) { kept = null; }
  });

  function act(action) {
    keepCursor();
    var row = cursorRow();
    var ids = selectedIds(row && row.getAttribute("data-id"));
    if (!ids.length) { if (!inFlight) { kept = null; } return; }
    if (action === "important" && row && row.querySelector('.star [aria-pressed="true"]')) { action = "unimportant"; }
    inFlight += 1;
    post("/inbox/actions", {action: action, ids: ids});
  }

  function typing(evt) {
    var t = evt.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  var listKeys = {
    "j": function () { moveCursor(1); },
    "k": function () { moveCursor(-1); },
    "Enter": function () { var r = cursorRow(); if (r) { window.location.href = r.getAttribute("data-href"); } },
    "x": function () { var r = cursorRow(); var c = r && r.querySelector("input[name=ids]"); if (c) { c.checked = !c.checked; } },
    "#": function () { act("trash"); },
    "s": function () { act("important"); },
    "u": function () { act("unread"); }
  };

  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey || typing(evt)) { return; }
    if (evt.key === "/") {
      var q = document.getElementById("search-q");
      if (q) { evt.preventDefault(); q.focus(); q.select(); }
      return;
    }
    if (evt.key === "?") {
      var help = document.getElementById("keys-help");
      if (help && help.showModal && !help.open) { help.showModal(); }
      return;
    }
    // On a mail's page, buttons name their own keys.
    var button = document.querySelector('[data-key="' + (evt.key === "#" ? "\\#" : evt.key) + '"]');
    if (button) { evt.preventDefault(); button.click(); return; }
    if (document.getElementById("rows") && listKeys[evt.key]) {
      evt.preventDefault();
      listKeys[evt.key]();
    }
  });

  document.addEventListener("change", function (evt) {
    if (evt.target && evt.target.id === "select-all") {
      rows().forEach(function (r) {
        var c = r.querySelector("input[name=ids]");
        if (c) { c.checked = evt.target.checked; }
      });
    }
  });

  document.addEventListener("click", function (evt) {
    var row = evt.target.closest && evt.target.closest("#rows tr.mailrow");
    if (row) {
      rows().forEach(function (r) { r.classList.remove("cursor"); });
      row.classList.add("cursor");
    }
  });

  // Drag rows onto a folder link of the pane (links that carry data-drop-url).
  document.addEventListener("dragstart", function (evt) {
    var row = evt.target.closest && evt.target.closest("#rows tr.mailrow");
    if (!row) { return; }
    evt.dataTransfer.setData("text/x-mail-ids", selectedIds(row.getAttribute("data-id")).join(","));
    evt.dataTransfer.effectAllowed = "move";
  });

  function dropTarget(evt) { return evt.target.closest && evt.target.closest("[data-drop-url]"); }

  document.addEventListener("dragover", function (evt) {
    var target = dropTarget(evt);
    if (target) { evt.preventDefault(); target.classList.add("drop-over"); }
  });

  document.addEventListener("dragleave", function (evt) {
    var target = dropTarget(evt);
    if (target) { target.classList.remove("drop-over"); }
  });

  document.addEventListener("drop", function (evt) {
    var target = dropTarget(evt);
    if (!target) { return; }
    evt.preventDefault();
    target.classList.remove("drop-over");
    var ids = (evt.dataTransfer.getData("text/x-mail-ids") || "").split(",").filter(Boolean);
    if (!ids.length) { return; }
    var values = {ids: ids, target: target.getAttribute("data-drop-target"), from: folderKey()};
    htmx.ajax("POST", target.getAttribute("data-drop-url"), {
      target: "#list", select: "#list", swap: "outerHTML", values: values, headers: csrfHeaders()
    });
  });
})();

// Deleting for everyone asks first; the server shows a confirmation page when JS is off.
document.addEventListener("click", function (evt) {
  var button = evt.target.closest && evt.target.closest("button[data-confirm]");
  if (!button) { return; }
  if (!window.confirm(button.getAttribute("data-confirm"))) {
    evt.preventDefault();
    evt.stopPropagation();
    return;
  }
  var flag = button.form && button.form.querySelector("input[name=confirmed]");
  if (flag) { flag.value = "yes"; }
}, true);

// The mail body frame takes the height of its content. It is sandboxed without allow-scripts,
// so nothing in the mail runs; allow-same-origin lets this page read the document's height.
(function () {
  "use strict";

  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.body) { return; }
    var html = doc.documentElement;
    var height = Math.max(html.offsetHeight, doc.body.scrollHeight);
    if (html.scrollWidth > html.clientWidth) { height += 20; }  // room for a horizontal scrollbar
    var borders = frame.offsetHeight - frame.clientHeight;
    frame.style.height = (height + borders) + "px";
  }

  function fitAll() { document.querySelectorAll("iframe.mailbody").forEach(fit); }

  // load does not bubble, but it can be caught on its way down; images inside delay it.
  document.addEventListener("load", function (evt) {
    var el = evt.target;
    if (el && el.matches && el.matches("iframe.mailbody")) { fit(el); }
  }, true);
  var pending = false;
  window.addEventListener("resize", function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; fitAll(); });
  });
  // A frame that finished loading before this script ran.
  document.querySelectorAll("iframe.mailbody").forEach(function (frame) {
    var doc = frame.contentDocument;
    if (doc && doc.readyState === "complete" && doc.body && doc.body.firstChild) { fit(frame); }
  });
})();
