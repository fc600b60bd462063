// The exercise page's code editor: CodeMirror (Python highlighting, line numbers) on the code textarea, labelled,
// leavable with the keyboard, a draft kept in this browser on every change, the refused line marked.
// Without JavaScript the plain textarea still works; CodeMirror copies its text back on submit.
(function () {
  "use strict";
  if (typeof CodeMirror === "undefined") return;

  function pad(n) { return String(n).padStart(2, "0"); }

  // Tab indents; Esc then Tab (or Shift-Tab) leaves the editor; Ctrl-M switches Tab to moving focus and back.
  // A key bound to `false` in extraKeys is left to the browser, whose Tab moves the focus on.
  function keyboard(label) {
    var keys = { escaped: false, trap: true, extraKeys: {} };
    var mode = document.getElementById("tab-mode");
    function say(text) { if (mode) mode.textContent = text; }
    function indent(cm) {
      if (cm.somethingSelected()) cm.indentSelection("add");
      else cm.replaceSelection("    ", "end");
    }
    function dedent(cm) { cm.indentSelection("subtract"); }
    function tabs() {
      var free = keys.escaped || !keys.trap;
      keys.extraKeys.Tab = free ? false : indent;
      keys.extraKeys["Shift-Tab"] = free ? false : dedent;
    }
    keys.extraKeys.Esc = function () { keys.escaped = true; tabs(); say("Press Tab to leave the editor."); };
    keys.extraKeys["Ctrl-M"] = function () {
      keys.trap = !keys.trap;
      tabs();
      say(keys.trap ? "Tab indents again." : "Tab now moves to the next field; Ctrl+M again to indent with Tab.");
    };
    tabs();
    keys.watch = function (cm) {
      cm.on("keydown", function (_cm, event) {
        if (["Escape", "Tab", "Shift", "Control", "Alt", "Meta"].indexOf(event.key) < 0 && keys.escaped) {
          keys.escaped = false;
          tabs();
        }
      });
      cm.on("blur", function () { keys.escaped = false; tabs(); if (keys.trap) say(""); });
      if (label) label.addEventListener("click", function () { cm.focus(); });
    };
    return keys;
  }

  // "In the editor: your unsent draft ..." in place of what the server sent, with a button to discard it.
  function showDraft(status, saved, discard) {
    var words = document.getElementById("origin-words");
    var instead = words ? words.textContent.replace(/^In the editor: /, "").replace(/\.$/, "") : "the page's code";
    if (words) words.hidden = true;
    status.textContent = "In the editor: your unsent draft, kept in this browser (last change " + pad(saved.getHours())
      + ":" + pad(saved.getMinutes()) + ", your time). ";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.id = "discard-draft";
    button.textContent = "Discard the draft";
    button.addEventListener("click", function () {
      if (!window.confirm("Discard your draft and show " + instead + " instead?")) return;
      discard();
      status.textContent = "";
      if (words) words.hidden = false;
    });
    status.appendChild(button);
  }

  // localStorage, per participant and exercise: {code, saved}; gone again once it equals the server's code.
  function drafts(textarea, cm) {
    var key = textarea.dataset.draftKey, server = textarea.value, status = document.getElementById("draft-status");
    if (!key) return;
    function read() {
      try { return JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { return null; }
    }
    function write() {
      try {
        if (cm.getValue() === server) window.localStorage.removeItem(key);
        else window.localStorage.setItem(key, JSON.stringify({ code: cm.getValue(), saved: Date.now() }));
      } catch (e) { /* private mode or full: the server still has the last submission */ }
    }
    var draft = read();
    if (draft && typeof draft.code === "string" && draft.code !== server && textarea.dataset.keepServerCode !== "1") {
      cm.setValue(draft.code);
      cm.clearHistory();
      if (status) showDraft(status, new Date(draft.saved), function () { cm.setValue(server); });
    } else if (draft && draft.code === server) {
      window.localStorage.removeItem(key);
    }
    cm.on("changes", write);
  }

  // "Restore the starter code" (a plain link to ?starter=1 without JavaScript): asks, then loads it in place.
  function starterButton(cm) {
    var link = document.getElementById("restore-starter");
    if (!link) return;
    link.addEventListener("click", function (event) {
      event.preventDefault();
      if (!window.confirm("Replace the code in the editor with the starter code? What is in the editor now is lost "
        + "(your submissions are kept).")) return;
      fetch(link.dataset.starterUrl, { credentials: "same-origin" })
        .then(function (response) { if (!response.ok) throw new Error(response.status); return response.text(); })
        .then(function (text) { cm.setValue(text); cm.focus(); })
        .catch(function () { window.location.href = link.href; });
    });
  }

  // A refused submission: its line marked in the editor, focus on the message beside it.
  function markError(textarea, cm) {
    var line = parseInt(textarea.dataset.errorLine || "", 10) - 1;
    if (line >= 0 && line < cm.lineCount()) {
      cm.addLineClass(line, "background", "cm-error-line");
      var marker = document.createElement("span");
      marker.className = "cm-error-marker";
      marker.textContent = "●";
      marker.title = "The error is on this line";
      cm.setGutterMarker(line, "cm-error-gutter", marker);
      cm.scrollIntoView({ line: line, ch: 0 }, 100);
    }
    var alert = document.getElementById("code-error");
    if (alert) {
      alert.focus();
      alert.scrollIntoView({ block: "start" });
    }
  }

  document.querySelectorAll("textarea[data-editor=python]").forEach(function (textarea) {
    var label = document.querySelector("label[for='" + textarea.id + "']");
    var keys = keyboard(label);
    var editor = CodeMirror.fromTextArea(textarea, {
      mode: { name: "python", version: 3 },
      lineNumbers: true,
      lineWrapping: false,
      gutters: ["cm-error-gutter", "CodeMirror-linenumbers"],
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      viewportMargin: Infinity,
      screenReaderLabel: label ? label.textContent : "Code",
      extraKeys: keys.extraKeys,
    });
    editor.getWrapperElement().classList.add("code-editor");
    var input = editor.getInputField();
    if (textarea.getAttribute("aria-describedby")) input.setAttribute("aria-describedby", textarea.getAttribute("aria-describedby"));
    if (label) { label.id = label.id || "code-label"; input.setAttribute("aria-labelledby", label.id); }
    keys.watch(editor);
    drafts(textarea, editor);
    starterButton(editor);
    markError(textarea, editor);
    if (window.location.hash === "#code" && !document.getElementById("code-error")) {
      editor.getWrapperElement().scrollIntoView({ block: "center" });
    }
  });
})();
