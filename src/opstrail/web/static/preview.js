/* Debug and preview: chat box (chat, agent-chat, advanced-chat), input form (completion),
 * start-node form with live node statuses (workflow). Runs stream from the console endpoints
 * as server-sent events; each answer or run then shows its delivery state and, once
 * delivered, a link to its trace in Langfuse. */
"use strict";
(function () {
  const { api, stream, el, showPageError } = window.opstrail;
  const appId = document.body.dataset.appId;
  const base = "/console/api/apps/" + encodeURIComponent(appId);
  const CHAT_MODES = new Set(["chat", "agent-chat", "advanced-chat"]);
  let params = null;
  let conversationId = "";

  /* ---- input forms (Dify's user_input_form) ---- */

  function formItems(form) {
    return (form || []).map((entry) => {
      const type = Object.keys(entry)[0];
      return Object.assign({ kind: type }, entry[type]);
    }).filter((item) => item && item.variable);
  }

  function renderFields(container, items, prefix) {
    container.replaceChildren(...items.map((item) => {
      const id = prefix + "-" + item.variable;
      const label = el("label", { for: id, text: (item.label || item.variable) + (item.required ? " *" : "") });
      let input;
      if (item.kind === "select") {
        input = el("select", { id, name: item.variable, required: !!item.required },
          el("option", { value: "", text: "Choose…" }),
          ...(item.options || []).map((o) => el("option", { value: o, text: o })));
      } else if (item.kind === "paragraph") {
        input = el("textarea", { id, name: item.variable, rows: "3", required: !!item.required,
                                 maxlength: item.max_length || null });
      } else {
        input = el("input", { id, name: item.variable, required: !!item.required,
                              type: item.kind === "number" ? "number" : "text",
                              maxlength: item.max_length || null });
      }
      if (item.default !== undefined && item.default !== null) input.value = item.default;
      return el("div", { class: "field" }, label, input);
    }));
  }

  function readFields(form, items) {
    const inputs = {};
    const missing = [];
    for (const item of items) {
      const input = form.elements[item.variable];
      const value = input ? input.value : "";
      if (item.required && !value.trim()) missing.push(input);
      if (value === "") continue;
      inputs[item.variable] = item.kind === "number" ? Number(value) : value;
    }
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
    for (const input of missing) input.setAttribute("aria-invalid", "true");
    if (missing.length) { missing[0].focus(); return null; }
    return inputs;
  }

  /* ---- delivery state of one answer or run ---- */

  function deliveryBadge(kind, id) {
    const badge = el("span", { class: "delivery", "data-state": "pending", text: "Trace: pending" });
    const path = kind === "message" ? "/messages/" : "/workflow-runs/";
    let tries = 0;
    async function poll() {
      tries += 1;
      let answer;
      try { answer = await api("GET", base + path + encodeURIComponent(id) + "/delivery"); }
      catch (e) { badge.textContent = "Trace: state unavailable (" + e.message + ")"; return; }
      badge.dataset.state = answer.state;
      if (answer.state === "delivered") {
        badge.replaceChildren("Trace: delivered ");
        if (answer.trace_url) {
          badge.append(el("a", { href: answer.trace_url, target: "_blank", rel: "noopener noreferrer",
                                 class: "trace-link", text: "View trace in Langfuse" }));
        }
        return;
      }
      if (answer.state === "failed") {
        badge.textContent = "Trace: failed" + (answer.reason ? " (" + answer.reason + ")" : "");
        return;
      }
      if (answer.state === "not_recorded") {
        badge.textContent = "Trace: not recorded" + (answer.reason ? " (" + answer.reason + ")" : "");
        return;
      }
      badge.textContent = "Trace: " + answer.state + (answer.reason ? " (" + answer.reason + ")" : "");
      /* Back off to every 5 s after the first 20 s; keep going while the page is open. */
      setTimeout(poll, tries < 20 ? 1000 : 5000);
    }
    setTimeout(poll, 300);
    return badge;
  }

  /* ---- chat ---- */

  function addBubble(role, text) {
    const item = el("li", { class: role });
    const body = el("div", { class: "text", text: text || "" });
    item.append(body);
    document.getElementById("chat-log").append(item);
    return { item, body };
  }

  function feedbackButtons(messageId) {
    const like = el("button", { type: "button", "aria-pressed": "false", text: "Like" });
    const dislike = el("button", { type: "button", "aria-pressed": "false", text: "Dislike" });
    async function rate(button, rating) {
      const on = button.getAttribute("aria-pressed") !== "true";
      try {
        await api("POST", base + "/feedbacks", { message_id: messageId, rating: on ? rating : null });
        like.setAttribute("aria-pressed", String(on && rating === "like"));
        dislike.setAttribute("aria-pressed", String(on && rating === "dislike"));
      } catch (e) { showPageError("Could not save the rating: " + e.message); }
    }
    like.addEventListener("click", () => rate(like, "like"));
    dislike.addEventListener("click", () => rate(dislike, "dislike"));
    return [like, dislike];
  }

  function showSuggestions(questions) {
    const box = document.getElementById("chat-suggested");
    box.replaceChildren(...(questions || []).map((q) =>
      el("button", { type: "button", class: "suggestion", text: q, onclick: () => sendChat(q) })));
  }

  async function loadSuggestions(messageId) {
    try {
      const answer = await api("GET", base + "/chat-messages/" + encodeURIComponent(messageId) + "/suggested-questions");
      showSuggestions(answer.data || []);
    } catch (_) { showSuggestions([]); }
  }

  function resetChat() {
    conversationId = "";
    document.getElementById("chat-log").replaceChildren();
    if (params.opening_statement) addBubble("opening", params.opening_statement);
    showSuggestions(params.suggested_questions || []);
    document.getElementById("chat-query").focus();
  }

  let chatItems = [];
  let busy = false;
  /* Starts a turn; false (and nothing sent) while busy, or when a required input is empty. */
  function sendChat(query) {
    if (busy || !query.trim()) return false;
    const inputs = readFields(document.getElementById("chat-inputs"), chatItems);
    if (inputs === null) return false;
    runChat(query, inputs);
    return true;
  }

  async function runChat(query, inputs) {
    busy = true;
    const send = document.getElementById("chat-send");
    send.disabled = true;
    showSuggestions([]);
    addBubble("user", query);
    const { item, body } = addBubble("assistant", "");
    item.setAttribute("aria-busy", "true");
    let answer = "";
    let messageId = null;
    let failed = null;
    try {
      const path = params.mode === "advanced-chat" ? "/advanced-chat/workflows/draft/run" : "/chat-messages";
      await stream(base + path, {
        inputs, query, response_mode: "streaming", conversation_id: conversationId,
      }, (event) => {
        if (event.conversation_id) conversationId = event.conversation_id;
        if (event.message_id) messageId = event.message_id;
        if (event.event === "message" || event.event === "agent_message") {
          answer += event.answer || ""; body.textContent = answer;
        } else if (event.event === "message_replace") {
          answer = event.answer || ""; body.textContent = answer;
        } else if (event.event === "error") {
          failed = event.message || event.code || "the run failed";
        }
      });
    } catch (e) { failed = e.message; }
    item.removeAttribute("aria-busy");
    if (failed) {
      item.append(el("p", { class: "field-error", role: "alert", text: "Error: " + failed }));
    }
    if (messageId) {
      item.dataset.messageId = messageId;
      item.append(el("div", { class: "meta" }, ...feedbackButtons(messageId), deliveryBadge("message", messageId)));
      if (!failed) await loadSuggestions(messageId);
    }
    document.getElementById("preview-reset").hidden = false;
    busy = false;
    send.disabled = false;
  }

  function initChat() {
    document.getElementById("chat-box").hidden = false;
    chatItems = formItems(params.user_input_form);
    const inputsForm = document.getElementById("chat-inputs");
    if (chatItems.length) { renderFields(inputsForm, chatItems, "chat-input"); inputsForm.hidden = false; }
    const form = document.getElementById("chat-form");
    const query = document.getElementById("chat-query");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (sendChat(query.value)) query.value = "";
    });
    query.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });
    const reset = document.getElementById("preview-reset");
    reset.addEventListener("click", resetChat);
    resetChat();
  }

  /* ---- completion ---- */

  function initCompletion() {
    document.getElementById("completion-box").hidden = false;
    const form = document.getElementById("completion-form");
    const items = formItems(params.user_input_form);
    renderFields(form.querySelector(".fields"), items, "completion-input");
    const result = document.getElementById("completion-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const inputs = readFields(form, items);
      if (inputs === null) return;
      const button = document.getElementById("completion-run");
      button.disabled = true;
      const out = el("pre", { class: "answer" });
      result.replaceChildren(out);
      let answer = "", messageId = null, failed = null;
      try {
        await stream(base + "/completion-messages", { inputs, response_mode: "streaming" }, (e) => {
          if (e.message_id) messageId = e.message_id;
          if (e.event === "message") { answer += e.answer || ""; out.textContent = answer; }
          else if (e.event === "message_replace") { answer = e.answer || ""; out.textContent = answer; }
          else if (e.event === "error") failed = e.message || e.code;
        });
      } catch (e) { failed = e.message; }
      if (failed) result.append(el("p", { class: "field-error", role: "alert", text: "Error: " + failed }));
      if (messageId) result.append(el("div", { class: "meta" }, ...feedbackButtons(messageId), deliveryBadge("message", messageId)));
      button.disabled = false;
    });
  }

  /* ---- workflow ---- */

  function pretty(value) {
    if (value === undefined || value === null) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  function nodeRow(list, rows, data) {
    const key = data.id || data.node_execution_id || data.node_id;
    let row = rows.get(key);
    if (!row) {
      row = el("li", { class: "node", "data-node-id": data.node_id || "" });
      rows.set(key, row);
      list.append(row);
    }
    return row;
  }

  function renderNode(row, data, status) {
    const tokens = data.execution_metadata && data.execution_metadata.total_tokens;
    const time = typeof data.elapsed_time === "number" ? data.elapsed_time.toFixed(3) + " s" : null;
    row.dataset.status = status;
    const head = el("div", { class: "node-head" },
      el("strong", { text: data.title || data.node_id || data.node_type }), " ",
      el("span", { class: "badge node-status", text: status }),
      time ? el("span", { class: "muted", text: " · " + time }) : null,
      tokens ? el("span", { class: "muted", text: " · " + tokens + " tokens" }) : null);
    const parts = [head];
    if (data.error) parts.push(el("p", { class: "field-error", text: data.error }));
    if (data.inputs) parts.push(el("details", {}, el("summary", { text: "Inputs" }), el("pre", { text: pretty(data.inputs) })));
    if (data.outputs) parts.push(el("details", {}, el("summary", { text: "Outputs" }), el("pre", { text: pretty(data.outputs) })));
    row.replaceChildren(...parts);
  }

  function initWorkflow() {
    document.getElementById("workflow-box").hidden = false;
    const form = document.getElementById("workflow-form");
    const items = formItems(params.user_input_form);
    renderFields(form.querySelector(".fields"), items, "workflow-input");
    const result = document.getElementById("workflow-result");
    const list = document.getElementById("workflow-nodes");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const inputs = readFields(form, items);
      if (inputs === null) return;
      const button = document.getElementById("workflow-run");
      button.disabled = true;
      list.replaceChildren();
      const rows = new Map();
      const status = el("p", { class: "run-status", role: "status", text: "Running…" });
      result.replaceChildren(status);
      let runId = null, failed = null, finished = null;
      try {
        await stream(base + "/workflows/draft/run", { inputs, response_mode: "streaming" }, (e) => {
          if (e.workflow_run_id) runId = e.workflow_run_id;
          const data = e.data || {};
          if (e.event === "node_started") renderNode(nodeRow(list, rows, data), data, "running");
          else if (e.event === "node_finished") renderNode(nodeRow(list, rows, data), data, data.status || "succeeded");
          else if (e.event === "workflow_finished") finished = data;
          else if (e.event === "error") failed = e.message || e.code;
        });
      } catch (e) { failed = e.message; }
      if (finished) {
        const tokens = finished.total_tokens ? " · " + finished.total_tokens + " tokens" : "";
        const time = typeof finished.elapsed_time === "number" ? " · " + finished.elapsed_time.toFixed(3) + " s" : "";
        status.textContent = "Run " + (finished.status || "finished") + time + tokens;
        status.dataset.status = finished.status || "";
        if (finished.error) result.append(el("p", { class: "field-error", role: "alert", text: finished.error }));
        result.append(el("details", { open: true }, el("summary", { text: "Outputs" }), el("pre", { text: pretty(finished.outputs) })));
      } else {
        status.textContent = "Run did not finish";
      }
      if (failed) result.append(el("p", { class: "field-error", role: "alert", text: "Error: " + failed }));
      if (runId) result.append(el("div", { class: "meta" }, deliveryBadge("run", runId)));
      button.disabled = false;
    });
  }

  document.addEventListener("opstrail:app", async (event) => {
    const app = event.detail;
    if (!app) return;
    try {
      params = await api("GET", base + "/preview/parameters");
    } catch (e) { showPageError("Could not load the app's inputs: " + e.message); return; }
    const mode = params.mode || app.mode;
    if (CHAT_MODES.has(mode)) initChat();
    else if (mode === "completion") initCompletion();
    else if (mode === "workflow") initWorkflow();
    else showPageError("Preview is not available for mode " + mode + ".");
  });
})();
