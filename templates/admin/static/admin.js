// Writes from the admin pages: POST to the JSON API with the session's CSRF token. Loaded by base.html on every
// page, so the page scripts (schedules.js, sync.js) reuse postAction and onButton instead of copying them.
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

// Disables the button while POSTing `path` (body as JSON, when given), flashes the API's error, or else the
// [text, ok] that outcome(result) returns, and reloads the page to show the change only when ok.
async function postAction(button, path, body, outcome) {
  button.disabled = true;
  try {
    const headers = { "X-CSRF-Token": csrfToken() };
    const init = { method: "POST", credentials: "same-origin", headers: headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(root() + path, init);
    const result = await response.json();
    if (!response.ok) { flash(result.detail ? JSON.stringify(result.detail) : response.statusText, false); return; }
    const [text, ok] = outcome(result);
    flash(text, ok);
    if (ok) window.setTimeout(() => window.location.reload(), 700);
  } catch (err) {
    flash(String(err), false);
  } finally {
    button.disabled = false;
  }
}

// Calls handler(button) for clicks on buttons matching selector; each page's buttons have their own data attribute.
function onButton(selector, handler) {
  document.addEventListener("click", (event) => {
    const button = event.target.closest(selector);
    if (button) { event.preventDefault(); handler(button); }
  });
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
  await postAction(button, "/admin/api/dead-letters/" + action, body, (result) => {
    const count = action === "requeue" ? result.requeued : result.discarded;
    return [(action === "requeue" ? "Requeued " : "Discarded ") + count + ".", true];
  });
}

onButton("button[data-action]", act);

document.addEventListener("change", (event) => {
  if (event.target.matches("input[data-select-all]")) {
    document.querySelectorAll('input[name="id"]:not(:disabled)').forEach((box) => { box.checked = event.target.checked; });
  }
});
