/* opstrail console: shared helpers and the sign-in, app list and overview pages.
 * The console token lives in sessionStorage (this tab only) and is sent as a Bearer token
 * to the console JSON API; no other authentication path exists for the pages. */
"use strict";
(function () {
  const TOKEN_KEY = "opstrail.console_token";

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    window.location.assign("/console/signin");
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || ("HTTP " + status));
      this.status = status; this.code = (body && body.code) || "error"; this.body = body;
    }
  }

  /* Calls the console JSON API; a 401 sends the user back to sign-in. */
  async function api(method, path, body, options) {
    const headers = { "Accept": "application/json" };
    const t = (options && options.token) || token();
    if (t) headers["Authorization"] = "Bearer " + t;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    const text = await response.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = { message: text }; } }
    if (response.status === 401 && !(options && options.noRedirect)) { signOut(); }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  /* POSTs and reads a server-sent event stream, calling onEvent(data) for each event. */
  async function stream(path, body, onEvent) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json",
                 "Accept": "text/event-stream" },
      body: JSON.stringify(body),
    });
    if (response.status === 401) { signOut(); }
    if (!response.ok) {
      let data = null; try { data = await response.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(response.status, data);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const lines = chunk.split(/\r?\n/).filter((l) => l.startsWith("data:"));
        if (!lines.length) continue;
        const payload = lines.map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        try { onEvent(JSON.parse(payload)); } catch (e) {
          if (e instanceof SyntaxError) continue; throw e;
        }
      }
    }
  }

  function formatDate(value) {
    if (value === null || value === undefined || value === "") return "never";
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function showPageError(message) {
    const box = document.getElementById("page-error");
    if (!box) return;
    box.textContent = message; box.hidden = !message;
  }

  const MODE_NAMES = {
    "chat": "Chatbot", "agent-chat": "Agent", "advanced-chat": "Chatflow",
    "completion": "Text generator", "workflow": "Workflow",
  };
  function modeName(mode) { return MODE_NAMES[mode] ? MODE_NAMES[mode] + " (" + mode + ")" : mode; }

  /* Loads the app shown by an app page once and shares it. */
  let appPromise = null;
  function currentApp() {
    const appId = document.body.dataset.appId;
    if (!appId) return Promise.resolve(null);
    if (!appPromise) appPromise = api("GET", "/console/api/apps/" + encodeURIComponent(appId));
    return appPromise;
  }

  window.opstrail = { api, stream, token, signOut, formatDate, el, showPageError, modeName,
                      currentApp, ApiError };

  /* ---- pages ---- */

  function initSignin() {
    if (token()) { window.location.replace("/console/apps"); return; }
    const form = document.getElementById("signin-form");
    const input = document.getElementById("token");
    const error = document.getElementById("signin-error");
    input.focus();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const value = input.value.trim();
      if (!value) { error.textContent = "Enter the console token."; error.hidden = false; input.focus(); return; }
      try {
        await api("GET", "/console/api/apps?page=1&limit=1", undefined, { token: value, noRedirect: true });
      } catch (e) {
        error.textContent = e.status === 401 ? "This token is not valid for this server."
          : "Could not check the token: " + e.message;
        error.hidden = false; input.setAttribute("aria-invalid", "true"); input.focus();
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      window.location.assign("/console/apps");
    });
  }

  function appRows(data) {
    if (Array.isArray(data)) return data;
    return (data && (data.data || data.apps)) || [];
  }

  async function loadApps() {
    const table = document.getElementById("apps-table");
    const empty = document.getElementById("apps-empty");
    const body = table.querySelector("tbody");
    const apps = appRows(await api("GET", "/console/api/apps?page=1&limit=100"));
    body.replaceChildren(...apps.map((app) => el("tr", {},
      el("td", {}, el("a", { href: "/console/apps/" + encodeURIComponent(app.id) + "/overview", text: app.name })),
      el("td", { text: modeName(app.mode) }),
      el("td", { text: formatDate(app.created_at) }))));
    table.hidden = apps.length === 0;
    empty.hidden = apps.length !== 0;
  }

  function initApps() {
    loadApps().catch((e) => showPageError("Could not load the apps: " + e.message));
    const form = document.getElementById("import-form");
    const file = document.getElementById("dsl-file");
    const result = document.getElementById("import-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      result.replaceChildren();
      if (!file.files.length) {
        result.append(el("p", { class: "notice error", text: "Choose a DSL file first." })); file.focus(); return;
      }
      const yaml = await file.files[0].text();
      try {
        const answer = await api("POST", "/console/api/apps/imports", { mode: "yaml-content", yaml_content: yaml });
        if (answer && answer.status === "failed") throw new ApiError(400, { message: answer.error || "Import failed." });
        const appId = answer.app_id || answer.id;
        const warnings = answer.warnings || (answer.error ? [answer.error] : []);
        result.append(el("p", { class: "notice ok" }, "Imported. ",
          el("a", { href: "/console/apps/" + encodeURIComponent(appId) + "/overview", text: "Open the app" })));
        if (warnings.length) {
          result.append(el("ul", { class: "help", "aria-label": "Import warnings" },
            ...warnings.map((w) => el("li", { text: typeof w === "string" ? w : (w.message || JSON.stringify(w)) }))));
        }
        form.reset();
        await loadApps();
      } catch (e) {
        result.append(el("p", { class: "notice error", role: "alert", text: "Import refused: " + e.message }));
      }
    });
  }

  async function initAppHead() {
    try {
      const app = await currentApp();
      document.getElementById("app-name").textContent = app.name;
      document.getElementById("app-mode").textContent = modeName(app.mode);
      document.title = app.name + " · " + document.title;
      return app;
    } catch (e) {
      showPageError(e.status === 404 ? "This app does not exist." : "Could not load the app: " + e.message);
      return null;
    }
  }

  function curlExample(app, key) {
    const base = window.location.origin + "/v1";
    const auth = "Authorization: Bearer " + (key || "{api_key}");
    if (app.mode === "workflow") {
      return "curl -X POST '" + base + "/workflows/run' \\\n  -H '" + auth + "' \\\n" +
        "  -H 'Content-Type: application/json' \\\n" +
        "  -d '{\"inputs\": {}, \"response_mode\": \"blocking\", \"user\": \"abc-123\"}'";
    }
    if (app.mode === "completion") {
      return "curl -X POST '" + base + "/completion-messages' \\\n  -H '" + auth + "' \\\n" +
        "  -H 'Content-Type: application/json' \\\n" +
        "  -d '{\"inputs\": {}, \"response_mode\": \"blocking\", \"user\": \"abc-123\"}'";
    }
    return "curl -X POST '" + base + "/chat-messages' \\\n  -H '" + auth + "' \\\n" +
      "  -H 'Content-Type: application/json' \\\n" +
      "  -d '{\"inputs\": {}, \"query\": \"Hello\", \"response_mode\": \"streaming\", \"conversation_id\": \"\", \"user\": \"abc-123\"}'";
  }

  async function initOverview(app) {
    if (!app) return;
    document.getElementById("ov-mode").textContent = modeName(app.mode);
    document.getElementById("ov-created").textContent = formatDate(app.created_at);
    const curl = document.getElementById("curl-example");
    curl.value = curlExample(app, null);
    const button = document.getElementById("create-key");
    const result = document.getElementById("key-result");
    button.addEventListener("click", async () => {
      result.replaceChildren();
      try {
        const answer = await api("POST", "/console/api/apps/" + encodeURIComponent(app.id) + "/api-keys", {});
        const key = answer.token || answer.key || answer.api_key;
        result.append(el("p", { class: "notice ok" }, "New API key (shown once): ",
          el("code", { id: "new-api-key", text: key })));
        curl.value = curlExample(app, key);
      } catch (e) {
        result.append(el("p", { class: "notice error", role: "alert", text: "Could not create a key: " + e.message }));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const page = document.body.dataset.page;
    const signout = document.getElementById("signout");
    if (signout) signout.addEventListener("click", signOut);
    if (page === "signin") { initSignin(); return; }
    if (!token()) { window.location.replace("/console/signin"); return; }
    if (page === "apps") { initApps(); return; }
    const app = await initAppHead();
    if (page === "overview") initOverview(app);
    document.dispatchEvent(new CustomEvent("opstrail:app", { detail: app }));
  });
})();
