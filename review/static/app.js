// Keyboard shortcuts for the review pages (progressive: every action is also a plain form or link).
// a: accept all; d/s/k (first letter of a label set) then a digit or a label's first letter: change it;
// e: edit the OCR text; x: skip; j: next; u: undo; +/-: zoom the scan; ?: the shortcut sheet.
(function () {
  "use strict";
  var picking = null;

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      target.isContentEditable);
  }
  function submit(id) {
    var form = document.getElementById(id);
    if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
  }
  function follow(id) {
    var link = document.getElementById(id);
    if (link) { window.location.assign(link.href); }
  }
  function stopPicking() {
    if (picking) { picking.classList.remove("picking"); picking = null; }
  }
  function pick(form, key) {
    var select = form.querySelector("select");
    var options = Array.prototype.slice.call(select.options);
    var chosen = options.find(function (o) { return o.dataset.digit === key; }) ||
      options.find(function (o) { return o.value.charAt(0).toLowerCase() === key; });
    if (!chosen) { return false; }
    select.value = chosen.value;
    form.requestSubmit ? form.requestSubmit() : form.submit();
    return true;
  }
  function editText() {
    var pre = document.getElementById("case-text");
    var form = document.getElementById("text-form");
    if (!pre || !form) { return; }
    var area = form.querySelector("textarea");
    form.hidden = false;
    pre.hidden = true;
    area.focus();
  }
  function zoom(step) {
    document.querySelectorAll("img.zoomable").forEach(function (img) {
      var level = Math.max(1, Math.min(3, (parseInt(img.dataset.zoom || "1", 10)) + step));
      img.dataset.zoom = String(level);
      img.classList.remove("zoom-2", "zoom-3");
      if (level > 1) { img.classList.add("zoom-" + level); }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) {
      if (event.key === "Enter" && event.ctrlKey && typing(event.target) && event.target.form) {
        event.preventDefault();
        event.target.form.requestSubmit();
      }
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var sheet = document.getElementById("shortcuts");
    if (event.key === "?") {
      event.preventDefault();
      if (sheet.open) { sheet.close(); } else { sheet.showModal(); }
      return;
    }
    if (event.key === "Escape") { stopPicking(); return; }
    var key = event.key.toLowerCase();
    if (picking) {
      event.preventDefault();
      var form = picking;
      stopPicking();
      pick(form, key);
      return;
    }
    var page = document.body.dataset.page;
    if (page === "queue" && key === "j") { event.preventDefault(); follow("start"); return; }
    if (page !== "case") { return; }
    var set = document.querySelector('form.label-set[data-key="' + key + '"]');
    if (set && !set.querySelector("select").disabled) {
      event.preventDefault();
      picking = set;
      set.classList.add("picking");
      return;
    }
    var actions = {
      a: function () { submit("accept"); },
      u: function () { submit("undo"); },
      e: editText,
      j: function () { follow("next"); },
      x: function () { follow("skip"); },
      "+": function () { zoom(1); },
      "=": function () { zoom(1); },
      "-": function () { zoom(-1); }
    };
    if (actions[key]) { event.preventDefault(); actions[key](); }
  });

  document.addEventListener("click", function (event) {
    if (event.target.classList && event.target.classList.contains("zoomable")) { zoom(event.shiftKey ? -1 : 1); }
  });

  // A retrain answers after a minute or two: say so, and keep a second click from starting another.
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[data-busy]");
    if (!button) { return; }
    if (button.disabled) { event.preventDefault(); return; }
    var note = document.getElementById(button.dataset.busyTarget);
    if (note) { note.textContent = button.dataset.busy; }
    setTimeout(function () { button.disabled = true; }, 0);  // once the form has gone
  });
}());
