/* Monitoring: the "Tracing app performance" panel, the Langfuse config dialog and the
 * delivery status. Everything goes through the console JSON API:
 *   GET/POST .../trace, GET/POST/PATCH/DELETE .../trace-config, GET .../trace-status. */
"use strict";
(function () {
  const { api, el, formatDate, showPageError } = window.opstrail;
  const PROVIDER = "langfuse";

  /* Plain words for the validation codes of a rejected configuration (422). */
  const CONFIG_ERRORS = {
    unauthorized: "Langfuse rejected these keys. Check that they belong to this host/region.",
    host_unreachable: "Could not reach this host. Check the address; from inside a container, localhost is the container itself.",
    tls_error: "The host's TLS certificate could not be verified. Check the address or the certificate.",
    not_langfuse: "This host answered, but not like a Langfuse server. Check the address and any sub-path.",
    organization_key: "These are organization keys. Use the API keys of a project (Project settings, API keys).",
    no_project: "These keys have no project. Create a project in Langfuse and use its API keys.",
    usage_suspended: "Langfuse has suspended ingestion for this project (usage limit reached).",
    invalid_host: null, /* the server's own sentence says what is wrong with the address */
    conflict: "A Langfuse configuration already exists for this app. Reload the page to edit it.",
  };

  /* Plain words for a destination that is configured but not delivering. */
  const STATE_TEXT = {
    started: "In Service",
    disabled: "Disabled",
    not_configured: "Not configured",
    unauthorized: "Keys rejected by Langfuse",
    unreachable: "Host unreachable",
    error: "Not delivering",
  };
  const ERROR_CODE_TEXT = {
    usage_suspended: "Ingestion suspended",
    ingestion_suspended: "Ingestion suspended",
    unauthorized: "Keys rejected by Langfuse",
    host_unreachable: "Host unreachable",
    unreachable: "Host unreachable",
    tls_error: "TLS certificate refused",
  };

  const appId = document.body.dataset.appId;
  const base = "/console/api/apps/" + encodeURIComponent(appId);
  const ui = {};
  let config = null; /* the stored config as GET trace-config returns it, or null */
  let tracing = { enabled: false, tracing_provider: null };
  let lastFocus = null;

  function field(obj, ...names) {
    for (const n of names) if (obj && obj[n] !== undefined && obj[n] !== null) return obj[n];
    return undefined;
  }

  function stateText(status) {
    const state = status.state;
    if (state === "error") {
      const code = status.last_error ? status.last_error.code : null;
      return ERROR_CODE_TEXT[code] || STATE_TEXT.error;
    }
    return STATE_TEXT[state] || state;
  }

  function traceUrl(status, trace) {
    return trace.url || null;
  }

  let recent = [];
  function renderStatus(status) {
    const box = ui.status;
    box.dataset.state = status.state || "";
    box.querySelector(".status-text").textContent = stateText(status);
    const configured = config !== null;
    ui.delivery.hidden = !configured;
    if (!configured) return;
    ui.delivered.textContent = status.delivered ?? 0;
    ui.pending.textContent = (status.pending ?? 0) + (status.retrying ?? 0);
    ui.dead.textContent = status.dead ?? 0;
    ui.lastSuccess.textContent = formatDate(field(status, "last_success_at"));
    const lastError = status.last_error;
    ui.lastError.textContent = lastError
      ? (lastError.message || lastError.code) + (lastError.code ? " (" + lastError.code + ")" : "")
      : "none";
    const traces = recent || [];
    if (!traces.length) {
      ui.latest.replaceChildren(el("li", { class: "muted", text: "None yet." }));
    } else {
      ui.latest.replaceChildren(...traces.map((t) => {
        const url = traceUrl(status, t);
        const label = (t.kind ? t.kind + " " : "") + t.trace_id +
          " · " + t.state + " · " + formatDate(t.created_at);
        return el("li", {}, url
          ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "trace-link", text: label })
          : label);
      }));
    }
  }

  function renderConfig() {
    const configured = config !== null;
    const inUse = configured && tracing.tracing_provider === PROVIDER;
    ui.inUse.hidden = !inUse;
    ui.configured.hidden = !configured;
    const projectUrl = configured && config.tracing_config && config.tracing_config.project_url;
    ui.view.hidden = !projectUrl;
    if (projectUrl) ui.view.href = projectUrl;
    ui.switch.disabled = !configured;
    ui.switch.setAttribute("aria-checked", String(configured && !!tracing.enabled));
    ui.switchHelp.textContent = configured
      ? (tracing.enabled ? "Tracing is on: runs are sent to Langfuse." : "Tracing is off: runs are not recorded for Langfuse.")
      : "Configure a provider first";
  }

  async function refresh() {
    const [trace, cfg, status, latest] = await Promise.all([
      api("GET", base + "/trace"),
      api("GET", base + "/trace-config?tracing_provider=" + PROVIDER),
      api("GET", base + "/trace-status"),
      api("GET", base + "/recent-traces?limit=5"),
    ]);
    recent = (latest && latest.data) || [];
    tracing = trace || tracing;
    config = cfg && !cfg.has_not_configured ? cfg : null;
    renderConfig();
    renderStatus(status || { state: config ? (tracing.enabled ? "started" : "disabled") : "not_configured" });
  }

  async function refreshStatus() {
    if (document.hidden) return;
    try {
      const [status, latest] = await Promise.all([
        api("GET", base + "/trace-status"), api("GET", base + "/recent-traces?limit=5"),
      ]);
      recent = (latest && latest.data) || [];
      renderStatus(status);
    } catch (_) { /* tried again on the next tick */ }
  }

  /* ---- the config dialog ---- */

  function openConfig() {
    lastFocus = document.activeElement;
    ui.error.hidden = true;
    const stored = config && config.tracing_config;
    ui.secret.value = stored ? stored.secret_key || "" : "";
    ui.public.value = stored ? stored.public_key || "" : "";
    ui.host.value = stored ? stored.host || "" : "";
    for (const input of [ui.secret, ui.public, ui.host]) input.removeAttribute("aria-invalid");
    ui.save.textContent = stored ? "Save" : "Save & Enable";
    ui.remove.hidden = !stored;
    ui.dialog.showModal();
    ui.secret.focus();
  }

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  function restoreFocus() { if (lastFocus && lastFocus.focus) lastFocus.focus(); }

  function showConfigError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
    ui.error.focus && ui.error.setAttribute("tabindex", "-1");
  }

  function configErrorText(e) {
    if (e.status === 409) return CONFIG_ERRORS.conflict;
    if (e.status === 422 || e.status === 400) {
      const known = CONFIG_ERRORS[e.code];
      if (known) return known;
    }
    return e.message || "The configuration could not be saved.";
  }

  async function saveConfig(event) {
    event.preventDefault();
    ui.error.hidden = true;
    const values = { secret_key: ui.secret.value.trim(), public_key: ui.public.value.trim(), host: ui.host.value.trim() };
    const missing = [[ui.secret, "Secret Key"], [ui.public, "Public Key"], [ui.host, "Host"]]
      .filter(([input]) => !input.value.trim());
    for (const [input] of [[ui.secret], [ui.public], [ui.host]]) input.removeAttribute("aria-invalid");
    if (missing.length) {
      for (const [input] of missing) input.setAttribute("aria-invalid", "true");
      showConfigError("Fill in: " + missing.map(([, name]) => name).join(", ") + ".");
      missing[0][0].focus();
      return;
    }
    const stored = config && config.tracing_config;
    ui.save.disabled = true;
    const label = ui.save.textContent;
    ui.save.textContent = "Checking with Langfuse…";
    try {
      if (stored) {
        /* A key left exactly as the masked value it was shown as is not sent: it stays. */
        const changed = { host: values.host };
        if (values.secret_key !== stored.secret_key) changed.secret_key = values.secret_key;
        if (values.public_key !== stored.public_key) changed.public_key = values.public_key;
        await api("PATCH", base + "/trace-config", { tracing_provider: PROVIDER, tracing_config: changed });
      } else {
        await api("POST", base + "/trace-config", { tracing_provider: PROVIDER, tracing_config: values });
        await api("POST", base + "/trace", { enabled: true, tracing_provider: PROVIDER });
      }
      closeDialog(ui.dialog);
      await refresh();
    } catch (e) {
      showConfigError(configErrorText(e));
    } finally {
      ui.save.disabled = false;
      ui.save.textContent = label;
    }
  }

  async function removeConfig() {
    ui.removeConfirm.disabled = true;
    try {
      await api("DELETE", base + "/trace-config?tracing_provider=" + PROVIDER);
      const trace = await api("GET", base + "/trace");
      if (trace && trace.enabled) {
        /* Never leave tracing switched on without a provider. */
        await api("POST", base + "/trace", { enabled: false, tracing_provider: null });
      }
      closeDialog(ui.removeDialog);
      closeDialog(ui.dialog);
      await refresh();
      ui.configButton.focus();
    } catch (e) {
      closeDialog(ui.removeDialog);
      showConfigError("Could not remove the configuration: " + e.message);
    } finally {
      ui.removeConfirm.disabled = false;
    }
  }

  async function toggle() {
    if (ui.switch.disabled) return;
    const enabled = ui.switch.getAttribute("aria-checked") !== "true";
    ui.switch.disabled = true;
    try {
      await api("POST", base + "/trace", { enabled, tracing_provider: PROVIDER });
      await refresh();
    } catch (e) {
      showPageError("Could not switch tracing: " + e.message);
      renderConfig();
    }
  }

  /* Keep Tab inside an open dialog (showModal makes the rest inert; this also wraps around). */
  function trapFocus(dialog) {
    dialog.addEventListener("keydown", (event) => {
      if (event.key !== "Tab") return;
      const items = [...dialog.querySelectorAll("a[href], button, input, textarea, select")]
        .filter((n) => !n.disabled && !n.hidden && n.offsetParent !== null);
      if (!items.length) return;
      const first = items[0], last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.opstrail.token()) return;
    Object.assign(ui, {
      status: document.getElementById("tracing-status"),
      switch: document.getElementById("tracing-switch"),
      switchHelp: document.getElementById("switch-help"),
      inUse: document.getElementById("lf-in-use"),
      configured: document.getElementById("lf-configured"),
      view: document.getElementById("lf-view"),
      configButton: document.getElementById("lf-config"),
      delivery: document.getElementById("delivery"),
      delivered: document.getElementById("count-delivered"),
      pending: document.getElementById("count-pending"),
      dead: document.getElementById("count-dead"),
      lastSuccess: document.getElementById("last-success"),
      lastError: document.getElementById("last-error"),
      latest: document.getElementById("latest-traces"),
      dialog: document.getElementById("config-dialog"),
      form: document.getElementById("config-form"),
      error: document.getElementById("config-error"),
      secret: document.getElementById("lf-secret-key"),
      public: document.getElementById("lf-public-key"),
      host: document.getElementById("lf-host"),
      save: document.getElementById("config-save"),
      cancel: document.getElementById("config-cancel"),
      remove: document.getElementById("config-remove"),
      removeDialog: document.getElementById("remove-dialog"),
      removeCancel: document.getElementById("remove-cancel"),
      removeConfirm: document.getElementById("remove-confirm"),
    });
    ui.configButton.addEventListener("click", openConfig);
    ui.form.addEventListener("submit", saveConfig);
    ui.cancel.addEventListener("click", () => closeDialog(ui.dialog));
    ui.dialog.addEventListener("close", restoreFocus);
    ui.remove.addEventListener("click", () => {
      const inUse = tracing.enabled && tracing.tracing_provider === PROVIDER;
      document.getElementById("remove-text").textContent = inUse
        ? "The current configuration is in use, removing it will turn off tracing."
        : "The saved keys will be deleted. Traces recorded so far stay in Langfuse.";
      ui.removeDialog.showModal();
      ui.removeCancel.focus();
    });
    ui.removeCancel.addEventListener("click", () => closeDialog(ui.removeDialog));
    ui.removeDialog.addEventListener("close", () => { if (ui.dialog.open) ui.remove.focus(); });
    ui.removeConfirm.addEventListener("click", removeConfig);
    ui.switch.addEventListener("click", toggle);
    trapFocus(ui.dialog);
    trapFocus(ui.removeDialog);
    refresh().catch((e) => {
      ui.status.querySelector(".status-text").textContent = "Status unavailable";
      showPageError("Could not load the tracing settings: " + e.message);
    });
    setInterval(refreshStatus, 2000);
  });
})();
