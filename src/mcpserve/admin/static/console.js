// mcpserve operator console: refresh the figures from /admin/api/overview every few seconds.
// The page itself is rendered on the server; this only replaces the text of [data-figure]
// elements and reloads the page when rows come or go. Same-origin requests reuse the
// browser's credentials for this page.
"use strict";
(function () {
  var PERIOD_MS = 3000;
  var updated = document.getElementById("updated");
  function refresh() {
    fetch("/admin/api/overview", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (data.layout !== document.body.dataset.layout) { window.location.reload(); return; }
        document.querySelectorAll("[data-figure]").forEach(function (element) {
          var text = data.display[element.dataset.figure];
          if (text !== undefined) { element.textContent = text; }
        });
        updated.textContent = new Date().toISOString().slice(11, 19) + " UTC";
        updated.className = "";
        document.body.dataset.refreshed = "true";
      })
      .catch(function (error) {
        updated.textContent = "update failed (" + error.message + ")";
        updated.className = "stale";
      });
  }
  setInterval(refresh, PERIOD_MS);
})();
