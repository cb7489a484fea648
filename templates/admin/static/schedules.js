// Schedule writes from /admin/schedules: pause, resume and run now, POSTed to the JSON API with the CSRF token.
// Its own attribute (data-schedule-action), so admin.js's dead-letter handler never sees these buttons.
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

  const DONE = { pause: "Paused", resume: "Resumed", run: "Fired" };

  async function act(button) {
    const action = button.dataset.scheduleAction;
    const name = button.dataset.name;
    if (action === "run" && !window.confirm("Fire " + name + " now?")) return;
    button.disabled = true;
    try {
      const url = meta("admin-root") + "/admin/api/schedules/" + encodeURIComponent(name) + "/" + action;
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": meta("csrf-token") },
      });
      const result = await response.json();
      if (!response.ok) { flash(result.detail ? JSON.stringify(result.detail) : response.statusText, false); return; }
      if (action === "run" && (result.status !== "manual" || result.duplicate)) {
        flash("Nothing enqueued for " + name + " (" + result.status + ": " + (result.reason || "already claimed") + ").", false);
        return;
      }
      const extra = result.message_id ? " as message " + result.message_id : "";
      flash(DONE[action] + " " + name + extra + ".", true);
      window.setTimeout(() => window.location.reload(), 700);
    } catch (err) {
      flash(String(err), false);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-schedule-action]");
    if (button) { event.preventDefault(); act(button); }
  });
})();
