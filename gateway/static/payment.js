// Copy and print buttons for the payment codes: an enhancement only. Without this
// script the buttons stay hidden, the fields stay selectable and the browser prints.
(function () {
  "use strict";

  function copyField(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var said = document.getElementById(button.getAttribute("data-copy") + "-copied");
    var text = field.getAttribute("data-copy-value") || field.value;
    function done() { said.textContent = button.getAttribute("data-copied"); }
    function bySelection() {
      field.focus();
      field.select();
      if (document.execCommand("copy")) { done(); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, bySelection);
    } else {
      bySelection();
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    if (!document.getElementById(button.getAttribute("data-copy"))) { return; }
    button.addEventListener("click", function () { copyField(button); });
    button.hidden = false;
  });
  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
    button.hidden = false;
  });
}());
