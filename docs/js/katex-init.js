// Typesets the math that pymdownx.arithmatex (generic mode) leaves in .arithmatex elements as
// \( ... \) and \[ ... \], with the KaTeX files vendored beside this one (no CDN: the pages and
// their screenshots render offline). document$ is Material's page-load observable.
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: true,
    });
  });
});
