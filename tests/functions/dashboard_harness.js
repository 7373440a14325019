// Runs the dashboard's script against a minimal DOM and a canned API; prints what it rendered.
// Usage: node dashboard_harness.js SCRIPT.js [logged-out]  (test_dashboard.py extracts SCRIPT.js from the page)
// "logged-out": every API call answers 401, as without the session cookie.
"use strict";
class Node { constructor(tag) { this.tag = tag; this.children = []; this.textContent = ""; this.style = {}; this.listeners = {}; }
  appendChild(c) { this.children.push(c); return c; } addEventListener(t, f) { this.listeners[t] = f; } }
class Row extends Node { insertCell() { return this.appendChild(new Node("td")); } }
class Body extends Node { insertRow() { return this.appendChild(new Row("tr")); } replaceChildren() { this.children = []; } }
const els = { specs: new Body("tbody"), runs: new Body("tbody"), error: new Node("div"), openapi: new Node("a"),
  search: new Node("form"), "search-bot": new Node("input"), "search-query": new Node("input"), "search-results": new Body("ol") };
global.Node = Node;
global.document = { getElementById: id => els[id], createElement: t => new Node(t) };
global.location = { pathname: "/prefix" };
const prefix = "/prefix/";
const canned = {
  "v1/specs": { specs: [{ id: "train-a", type: "training", params: { botId: "a" }, timezone: "UTC", schedule: "@daily" }] },
  "v1/specs/train-a/runs?limit=5": { runs: [
    { id: "train-a-1", specId: "train-a", state: "running", progress: 42, phase: "train", createdAt: "2026-01-02" },
    { id: "train-a-0", specId: "train-a", state: "succeeded", progress: 100, phase: "done", metrics: { accuracy: 0.9 },
      createdAt: "2026-01-01" }] },
  "v1/runs/train-a-1:cancel": { id: "train-a-1", state: "cancelled" },
  "v1/bots/a%20b:search": { results: [{ articleId: "lost-card", score: 0.8123, matchedBy: ["semantic", "lexical"],
    text: "<b>Freeze</b> your card." }] },
};
const calls = [];
const loggedOut = process.argv[3] === "logged-out";
global.fetch = async (url, options) => {
  calls.push(((options && options.method) || "GET") + " " + url + (options && options.body ? " " + options.body : ""));
  if (loggedOut) return { ok: false, status: 401, statusText: "Unauthorized", json: async () => ({ error: { message: "authentication required" } }) };
  const body = url.startsWith(prefix) ? canned[url.slice(prefix.length)] : undefined;
  return { ok: !!body, status: body ? 200 : 404, statusText: "Not Found", json: async () => body || { error: { message: "no " + url } } };
};
let nextPoll = null;
global.setTimeout = (f, ms) => { nextPoll = ms; return 1; };
global.clearTimeout = () => {};
const settle = () => new Promise(r => setImmediate(r));
const text = n => n.children.length ? n.children.map(text).join("|") : String(n.textContent);
(async () => {
  require(require("path").resolve(process.argv[2]));
  for (let i = 0; i < 5; i++) await settle();
  if (loggedOut) { console.log(JSON.stringify({ calls, href: location.href, error: els.error.textContent })); return; }
  const first = { specs: els.specs.children.map(text), runs: els.runs.children.map(text), nextPoll,
    bar: els.runs.children[0].children[3].children[0].children[0].style.width, error: els.error.textContent,
    openapi: els.openapi.href };
  await els.runs.children[0].children[7].children[0].listeners.click();
  for (let i = 0; i < 5; i++) await settle();
  const errorAfterCancel = els.error.textContent;
  els["search-bot"].value = " a b "; els["search-query"].value = "lost card";
  let prevented = false;
  await els.search.listeners.submit({ preventDefault: () => { prevented = true; } });
  for (let i = 0; i < 5; i++) await settle();
  const search = { prevented, results: els["search-results"].children.map(text) };
  console.log(JSON.stringify({ ...first, calls, errorAfterCancel, search }));
})();
