// "Copy" buttons (the notebook page): <button data-copy="ID" hidden> copies the text of #ID, and says so in
// #ID-copied. The clipboard API needs a secure context (https or localhost); elsewhere, as on a workshop's
// http://10.0.0.5:5000, the text is selected and copied the old way, or left selected for Ctrl+C.
(function () {
  "use strict";

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copySelected(element) {
    select(element);
    try { return document.execCommand("copy"); } catch (error) { return false; }
  }

  function wire(button) {
    var target = document.getElementById(button.dataset.copy);
    var status = document.getElementById(button.dataset.copy + "-copied");
    if (!target) return;
    function said(ok) {
      if (!ok) select(target);
      if (status) status.textContent = ok ? "Copied." : "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { said(true); }, function () { said(copySelected(target)); });
      } else {
        said(copySelected(target));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(wire);
  });
})();
