// Dead-letter writes from the pages: POST to the JSON API with the session's CSRF token.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function root() {
  const meta = document.querySelector('meta[name="admin-root"]');
  return meta ? meta.content : "";
}

function flash(text, ok) {
  const box = document.getElementById("flash");
  if (!box) return;
  box.textContent = text;
  box.className = "flash " + (ok ? "ok" : "error");
  box.hidden = false;
}

function selection(button) {
  if (button.dataset.fingerprint) return { fingerprint: button.dataset.fingerprint };
  if (button.dataset.ids) return { ids: button.dataset.ids.split(",").map(Number) };
  const ids = Array.from(document.querySelectorAll('input[name="id"]:checked')).map((box) => Number(box.value));
  return ids.length ? { ids: ids } : null;
}

async function act(button) {
  const action = button.dataset.action;
  const body = selection(button);
  if (!body) { flash("Select at least one dead letter.", false); return; }
  const what = body.fingerprint ? "every dead letter of this cause" : body.ids.length + " dead letter(s)";
  if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " " + what + "?")) return;
  button.disabled = true;
  try {
    const response = await fetch(root() + "/admin/api/dead-letters/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    });
    const result = await response.json();
    if (!response.ok) { flash(result.detail ? JSON.stringify(result.detail) : response.statusText, false); return; }
    const count = action === "requeue" ? result.requeued : result.discarded;
    flash((action === "requeue" ? "Requeued " : "Discarded ") + count + ".", true);
    window.setTimeout(() => window.location.reload(), 700);
  } catch (err) {
    flash(String(err), false);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) { event.preventDefault(); act(button); }
});

document.addEventListener("change", (event) => {
  if (event.target.matches("input[data-select-all]")) {
    document.querySelectorAll('input[name="id"]:not(:disabled)').forEach((box) => { box.checked = event.target.checked; });
  }
});
