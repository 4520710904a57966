// Kezek console: dialogs, file tabs, a small Rhai highlighter over textareas, table
// filters. No framework, nothing loaded from elsewhere.
(function () {
  "use strict";

  // Confirmation dialogs: a button with data-dialog="ID" opens <dialog id=ID>;
  // a button with data-close closes its dialog.
  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target.closest("[data-dialog],[data-close]") : null;
    if (!t) return;
    if (t.hasAttribute("data-dialog")) {
      var d = document.getElementById(t.getAttribute("data-dialog"));
      if (d && d.showModal) { d.showModal(); var f = d.querySelector("textarea,input:not([type=hidden])"); if (f) f.focus(); }
    } else {
      var dlg = t.closest("dialog");
      if (dlg) dlg.close();
    }
  });

  // File tabs of the rules editor.
  document.querySelectorAll("[data-tab]").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var id = a.getAttribute("data-tab");
      document.querySelectorAll("[data-tab]").forEach(function (x) { x.classList.toggle("active", x === a); });
      document.querySelectorAll(".filepane").forEach(function (p) { p.classList.toggle("shown", p.id === id); });
      var keep = document.querySelector("input[name=tab]");
      if (keep) keep.value = a.getAttribute("data-file") || "";
      var ta = document.querySelector("#" + id + " textarea");
      if (ta) ta.dispatchEvent(new Event("input"));
    });
  });

  // Rhai highlighting: tokens rendered into the <pre> under the textarea.
  var KEYWORDS = /^(fn|let|const|if|else|while|loop|for|in|do|until|break|continue|return|throw|try|catch|switch|true|false|this|private|import|export|as|global)$/;
  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function highlight(src) {
    var out = "", i = 0, n = src.length;
    var re = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\.)*"?|`[^`]*`?|'(?:[^'\\\n]|\\.)*'?)|(\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g;
    var m;
    while ((m = re.exec(src)) !== null) {
      out += esc(src.slice(i, m.index));
      if (m[1]) out += '<span class="c">' + esc(m[1]) + "</span>";
      else if (m[2]) out += '<span class="s">' + esc(m[2]) + "</span>";
      else if (m[3]) out += '<span class="n">' + esc(m[3]) + "</span>";
      else if (m[4]) {
        if (KEYWORDS.test(m[4])) out += '<span class="k">' + esc(m[4]) + "</span>";
        else if (m[5]) out += '<span class="f">' + esc(m[4]) + "</span>";
        else out += esc(m[4]);
        if (m[5]) out += esc(m[5]);
      }
      i = re.lastIndex;
      if (m[0].length === 0) re.lastIndex++;
    }
    out += esc(src.slice(i, n));
    return out + "\n";
  }
  document.querySelectorAll("textarea[data-rhai]").forEach(function (ta) {
    var ed = ta.closest(".editor");
    var code = ed ? ed.querySelector("pre.hl code") : null;
    if (!code) return;
    ed.classList.add("on");
    var pre = code.parentNode;
    function sync() { code.innerHTML = highlight(ta.value); pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; }
    ta.addEventListener("input", sync);
    ta.addEventListener("scroll", function () { pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; });
    ta.addEventListener("keydown", function (e) {
      if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey) {
        e.preventDefault();
        var s = ta.selectionStart, en = ta.selectionEnd;
        ta.value = ta.value.slice(0, s) + "    " + ta.value.slice(en);
        ta.selectionStart = ta.selectionEnd = s + 4;
        sync();
      }
    });
    sync();
  });

  // Table filters: <input data-filter="TABLE_ID"> hides rows without the text.
  document.querySelectorAll("input[data-filter]").forEach(function (inp) {
    var table = document.getElementById(inp.getAttribute("data-filter"));
    if (!table) return;
    inp.addEventListener("input", function () {
      var q = inp.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        tr.hidden = q !== "" && tr.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
})();
