// Schedule writes from /admin/schedules: pause, resume and run now, through admin.js's postAction.
// Its own attribute (data-schedule-action), so admin.js's dead-letter handler never sees these buttons.
"use strict";

(function () {
  const DONE = { pause: "Paused", resume: "Resumed", run: "Fired" };

  async function act(button) {
    const action = button.dataset.scheduleAction;
    const name = button.dataset.name;
    if (action === "run" && !window.confirm("Fire " + name + " now?")) return;
    const path = "/admin/api/schedules/" + encodeURIComponent(name) + "/" + action;
    await postAction(button, path, undefined, (result) => {
      if (action === "run" && (result.status !== "manual" || result.duplicate)) {
        return ["Nothing enqueued for " + name + " (" + result.status + ": " + (result.reason || "already claimed") + ").", false];
      }
      const extra = result.message_id ? " as message " + result.message_id : "";
      return [DONE[action] + " " + name + extra + ".", true];
    });
  }

  onButton("button[data-schedule-action]", act);
})();
