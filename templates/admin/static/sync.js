// The retry button of /admin/sync: POSTs through admin.js's postAction, then reloads the run.
// Its own attribute (data-sync-retry), so admin.js's dead-letter handler never sees it.
"use strict";

(function () {
  async function retry(button) {
    const runId = button.dataset.syncRetry;
    if (!window.confirm("Retry the failed partitions of run " + runId + "?")) return;
    const path = "/admin/api/sync/runs/" + encodeURIComponent(runId) + "/retry";
    await postAction(button, path, undefined, (result) => ["Sent " + result.retried + " partition(s) again.", true]);
  }

  onButton("button[data-sync-retry]", retry);
})();
