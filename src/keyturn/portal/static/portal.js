// keyturn portal: the little JavaScript the dialogs need. The pages work without it (the
// server checks everything); with it, dialogs are modal, Escape closes them, buttons wait for
// their checkbox or their countdown, and secrets can be copied.
"use strict";

function pad(n) { return (n < 10 ? "0" : "") + n; }
function clockText(s) { return Math.floor(s / 60) + ":" + pad(s % 60); }
function byId(id) { return id ? document.getElementById(id) : null; }

// A button is enabled when its countdown is over and its checkbox (data-needs) is ticked.
function refresh(el) {
  const box = byId(el.dataset.needs);
  el.disabled = el.hasAttribute("data-waiting") || (box !== null && !box.checked);
}

function setUpGates() {
  document.querySelectorAll("[data-needs]").forEach(function (el) {
    refresh(el);
    byId(el.dataset.needs).addEventListener("change", function () { refresh(el); });
  });
}

// <span data-countdown="120" data-enable="id" data-disable="id" data-reveal="id"
// data-conceal="id id">: seconds left when the page was made, counted on this page's own clock,
// so the server's and the browser's clocks need not agree; at zero it enables or disables the
// button named, and shows or hides the elements named.
function setUpCountdowns() {
  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    const deadline = Date.now() + 1000 * parseInt(el.dataset.countdown, 10);
    function tick() {
      const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      el.textContent = clockText(left);
      if (left > 0) { return false; }
      const target = byId(el.dataset.enable);
      if (target) { target.removeAttribute("data-waiting"); refresh(target); }
      const stopped = byId(el.dataset.disable);
      if (stopped) { stopped.disabled = true; }
      const shown = byId(el.dataset.reveal);
      if (shown) { shown.hidden = false; }
      (el.dataset.conceal || "").split(" ").forEach(function (id) {
        const hidden = byId(id);
        if (hidden) { hidden.hidden = true; }
      });
      return true;
    }
    if (!tick()) {
      const timer = setInterval(function () { if (tick()) { clearInterval(timer); } }, 250);
    }
  });
}

// Dialogs open as modal ones (focus stays inside; the page behind is inert). Escape does what
// the dialog's close button does: submit its cancel form, or go to its close link.
function setUpDialogs() {
  document.querySelectorAll("dialog[data-modal]").forEach(function (dialog) {
    if (dialog.open) { dialog.close(); }
    dialog.showModal();
    const focus = dialog.querySelector("[autofocus]");
    if (focus) { focus.focus(); }
    dialog.addEventListener("cancel", function (event) {
      event.preventDefault();
      const form = byId(dialog.dataset.cancelForm);
      if (form) { form.requestSubmit(); return; }
      if (dialog.dataset.closeHref) { window.location.assign(dialog.dataset.closeHref); }
    });
  });
}

function setUpCopy() {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const field = byId(button.dataset.copy);
      const done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
        });
      } else {
        field.select();
        if (document.execCommand("copy")) { done(); }
      }
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  setUpGates();
  setUpCountdowns();
  setUpDialogs();
  setUpCopy();
});
