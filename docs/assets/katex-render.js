// KaTeX 0.19.1 (the npm package katex, MIT licence: assets/katex/LICENSE): katex.min.js, katex.min.css and the
// woff2 fonts, copied unchanged into assets/katex/.
// Renders the math that pymdownx.arithmatex (generic mode) leaves in the page, with the KaTeX shipped in
// assets/katex/ (no network): inline math in <span class="arithmatex">\(...\)</span>, display math in
// <div class="arithmatex">\[...\]</div>.
(function () {
  function render() {
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      var m = tex.match(/^\\\(([\s\S]*)\\\)$/) || tex.match(/^\\\[([\s\S]*)\\\]$/);
      if (m) { tex = m[1]; }
      katex.render(tex, el, { displayMode: display, throwOnError: true });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
