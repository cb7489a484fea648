// The retry button of /admin/sync: POSTs to the JSON API with the CSRF token, then reloads the run.
// Its own attribute (data-sync-retry), so admin.js's dead-letter handler never sees it.
"use strict";

(function () {
  function meta(name) {
    const element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.content : "";
  }

  function flash(text, ok) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = "flash " + (ok ? "ok" : "error");
    box.hidden = false;
  }

  async function retry(button) {
    const runId = button.dataset.syncRetry;
    if (!window.confirm("Retry the failed partitions of run " + runId + "?")) return;
    button.disabled = true;
    try {
      const url = meta("admin-root") + "/admin/api/sync/runs/" + encodeURIComponent(runId) + "/retry";
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": meta("csrf-token") },
      });
      const result = await response.json();
      if (!response.ok) { flash(result.detail ? JSON.stringify(result.detail) : response.statusText, false); return; }
      flash("Sent " + result.retried + " partition(s) again.", true);
      window.setTimeout(() => window.location.reload(), 700);
    } catch (err) {
      flash(String(err), false);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sync-retry]");
    if (button) { event.preventDefault(); retry(button); }
  });
})();
