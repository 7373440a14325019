{% raw %}
"use strict";
// The lists are rendered on the server; this keeps them live and drives the forms. Every text
// from the API goes into the page as textContent (never HTML). URLs are relative to the page.
const root = document.body.dataset.root || "./";
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "skipped", "superseded"]);
// While a run is active: the overview re-reads its lists (a few hundred store reads) every
// 1.5 s; a run page reads one record a second. Otherwise every 8 s (the overview only).
const FAST = document.getElementById("lists") ? 1500 : 1000;

function showError(message) { document.getElementById("error").textContent = message || ""; }

async function api(path, options) {
  const response = await fetch(root + path, { credentials: "same-origin", ...options });
  if (response.status === 401) { location.href = root + "login"; throw new Error("Not logged in: opening the login page."); }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.error && body.error.message) || response.statusText);
  return body;
}

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function seconds(value) {
  if (typeof value !== "number") return "—";
  return value < 90 ? value.toFixed(1) + " s" : Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
}

// Run and Cancel buttons: POST {} to their data-post path, then show the change.
document.addEventListener("click", async event => {
  const button = event.target.closest("button[data-post]");
  if (!button) return;
  button.disabled = true;
  try { await postJson(button.dataset.post, {}); showError(""); } catch (e) { showError(e.message); }
  button.disabled = false;
  refresh(true);
});

// --- the overview: re-read the server-rendered lists, fast while a run is active ---
let timer = null;
async function refreshLists() {
  const lists = document.getElementById("lists");
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (response.redirected || !response.ok) throw new Error("could not refresh: " + response.status);
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("lists");
  if (fresh) lists.replaceWith(fresh);
  return fresh ? fresh.dataset.active === "yes" : false;
}

// --- a run page: poll the run; when it ends, load the page again for its figures ---
function setBar(container, progress) {
  const p = Math.max(0, Math.min(100, Math.round(progress || 0)));
  const bar = container.querySelector(".bar");
  bar.setAttribute("aria-valuenow", String(p)); bar.title = p + "%";
  bar.firstElementChild.style.width = p + "%";
  container.querySelector(".pct").textContent = p + "%";
}

async function refreshRun() {
  const run = await api("v1/runs/" + encodeURIComponent(document.body.dataset.run));
  document.getElementById("state").textContent = run.state;
  document.getElementById("status").className = "card " + run.state;
  setBar(document.getElementById("progress"), run.progress);
  document.getElementById("phase").textContent = (run.phase || "—") + (run.message ? ": " + run.message : "");
  const ended = TERMINAL.has(run.state);
  document.getElementById("eta").textContent = !ended && typeof run.eta === "number" ? "about " + seconds(run.eta) + " left" : "—";
  if (ended && document.body.dataset.state !== run.state) { location.reload(); }
  return !ended;
}

async function showAudit() {
  const runId = document.body.dataset.run;
  const response = await fetch(root + "v1/audit?runId=" + encodeURIComponent(runId), { credentials: "same-origin" });
  if (response.status !== 200) return;  // no audit trail in this deployment (yet)
  const { entries } = await response.json();
  const body = document.getElementById("audit-entries");
  body.replaceChildren();
  for (const entry of entries || []) {
    const row = body.insertRow();
    for (const value of [entry.time, entry.subject, entry.action, entry.target, entry.outcome]) row.appendChild(el("td", value == null ? "" : value));
  }
  document.getElementById("audit").hidden = false;
}

async function refresh(soon) {
  clearTimeout(timer);
  let active = false;
  try {
    if (document.getElementById("lists")) active = await refreshLists();
    else if (document.body.dataset.page === "run") active = await refreshRun();
    else return;
  } catch (e) { showError(e.message); }
  timer = setTimeout(refresh, active || soon ? FAST : 8000);
}

// --- a bot page: try it (predict) and search ---
function highlighted(text, entities) {
  const out = document.createDocumentFragment();
  let at = 0;
  const spans = (entities || []).filter(e => Number.isInteger(e.start) && Number.isInteger(e.end) && e.start >= at)
    .sort((a, b) => a.start - b.start);
  for (const e of spans) {
    if (e.start < at || e.end > text.length || e.end <= e.start) continue;
    out.appendChild(document.createTextNode(text.slice(at, e.start)));
    const mark = el("mark", text.slice(e.start, e.end));
    mark.title = e.entity + (e.value != null ? " = " + e.value : "");
    mark.dataset.entity = e.entity;
    mark.appendChild(el("small", e.entity));
    out.appendChild(mark);
    at = e.end;
  }
  out.appendChild(document.createTextNode(text.slice(at)));
  return out;
}

async function tryIt(event) {
  event.preventDefault();
  const form = event.target;
  const text = document.getElementById("try-text").value;
  try {
    const answer = await postJson(form.dataset.postJson, { text });
    document.getElementById("pred-intent").textContent = answer.intent == null ? "(no intent)" : answer.intent;
    document.getElementById("pred-confidence").textContent =
      typeof answer.confidence === "number" ? "confidence " + answer.confidence.toFixed(2) + (answer.fallback ? " (below the threshold: fallback)" : "") : "";
    document.getElementById("pred-text").replaceChildren(highlighted(text, answer.entities));
    const list = document.getElementById("pred-entities");
    list.replaceChildren(...(answer.entities || []).map(e =>
      el("li", e.entity + ": " + JSON.stringify(e.value != null ? e.value : text.slice(e.start, e.end)) +
        (typeof e.confidence === "number" ? " (" + e.confidence.toFixed(2) + ")" : ""))));
    document.getElementById("prediction").hidden = false;
    showError("");
  } catch (e) { showError(e.message); }
}

async function search(event) {
  event.preventDefault();
  const query = document.getElementById("search-query").value;
  const list = document.getElementById("search-results");
  try {
    const { results } = await postJson(event.target.dataset.postJson, { query, k: 5 });
    list.replaceChildren(...results.map(hit => {
      const item = el("li");
      item.appendChild(el("strong", hit.title || hit.articleId));
      item.appendChild(el("span", " (" + Number(hit.score).toFixed(3) + ") ", "muted"));
      item.appendChild(el("div", hit.text));
      return item;
    }));
    showError(results.length ? "" : "No passages found.");
  } catch (e) { showError(e.message); }
}

const tryForm = document.getElementById("try-form");
if (tryForm) tryForm.addEventListener("submit", tryIt);
const searchForm = document.getElementById("search-form");
if (searchForm) searchForm.addEventListener("submit", search);
if (document.body.dataset.page === "run") showAudit();
if (document.getElementById("lists")) {
  timer = setTimeout(refresh, document.getElementById("lists").dataset.active === "yes" ? FAST : 8000);
} else if (document.body.dataset.page === "run" && !TERMINAL.has(document.body.dataset.state)) {
  timer = setTimeout(refresh, FAST);
}
{% endraw %}
