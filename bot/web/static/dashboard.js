// forgebot dashboard: the live parts. Each element with data-live="URL" is replaced every
// few seconds by the fragment the server renders at URL. The fragment comes from the same
// Jinja templates with autoescape on, so innerHTML only ever receives server-escaped text;
// untrusted titles and event data never reach the DOM through this script unescaped.
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  var last = new WeakMap();

  function refresh(el) {
    fetch(el.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        el.removeAttribute("data-stale");
        // Replace only on change, so a reader's text selection survives quiet periods.
        if (last.get(el) !== html) { last.set(el, html); el.innerHTML = html; }
      })
      .catch(function () { el.setAttribute("data-stale", "true"); });
  }

  function tick() {
    if (document.hidden) { return; }  // no polling from a background tab
    document.querySelectorAll("[data-live]").forEach(refresh);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-live]")) { setInterval(tick, PERIOD_MS); }
  });
})();
