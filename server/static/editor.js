// Turns the exercise page's code textarea into a CodeMirror editor (Python highlighting, line numbers).
// Without JavaScript the plain textarea still works; CodeMirror copies its text back on submit.
(function () {
  if (typeof CodeMirror === "undefined") return;
  document.querySelectorAll("textarea[data-editor=python]").forEach(function (textarea) {
    var editor = CodeMirror.fromTextArea(textarea, {
      mode: { name: "python", version: 3 },
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      viewportMargin: Infinity,
      extraKeys: {
        Tab: function (cm) {
          if (cm.somethingSelected()) cm.indentSelection("add");
          else cm.replaceSelection("    ", "end");
        },
        "Shift-Tab": function (cm) { cm.indentSelection("subtract"); },
      },
    });
    editor.getWrapperElement().classList.add("code-editor");
  });
})();
