// Runs the login page's script as opened from `jobplane up`'s link (/prefix/login#token=abc123)
// against a minimal DOM and a fetch that accepts the token; prints what it did.
"use strict";
const els = { form: { addEventListener() {} }, token: { value: "" }, error: { textContent: "" } };
global.document = { getElementById: id => els[id] };
const state = { calls: [], replaced: null, opened: null };
global.location = { pathname: "/prefix/login", search: "", hash: "#token=abc123", replace: url => { state.opened = url; } };
global.history = { replaceState: (s, t, url) => { state.replaced = url; global.location.hash = ""; } };
global.fetch = async (url, options) => {
  state.calls.push({ method: options.method, url, contentType: options.headers["Content-Type"], body: JSON.parse(options.body) });
  return { ok: true, status: 204, json: async () => null };
};
(async () => {
  require(require("path").resolve(process.argv[2]));
  for (let i = 0; i < 5; i++) await new Promise(r => setImmediate(r));
  console.log(JSON.stringify(state));
})();
