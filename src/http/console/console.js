// weir console: a small client of the hub protocol (docs/protocol.md) over one WebSocket.
//
// The page connects to `ws(s)://` + location.host + `/ws`. Query parameters of the page:
//   ?server=HOST:PORT  connect to that host instead of location.host (for development, when the
//                      page is served by something other than weir); it is shown in the top bar
//                      and highlighted so that a link cannot silently point the console, and the
//                      token typed into it, at another server.
//   ?channel=NAME      subscribe to NAME on connect (repeatable).
//   ?agent=NAME        watch agent NAME (repeatable); by default the page lists the agents with
//                      GET /api/agents, which it cannot read from another server (?server=).
// The tunnels card lists the reverse tunnel's agents (GET /api/tunnels, with the token typed in
// as `?token=`, every STATS_EVERY_MS); it stays hidden when the server has no tunnels (404), the
// page may not read them, or it was pointed at another server.
// The page connects as soon as it is loaded; when the server wants a token it stops and asks for
// one. A token, when given, is sent to the hub with the `authenticate` method right after the
// `connected` event (so it never appears in a URL or a proxy's access log). The agents'
// endpoints have no such method, and a browser cannot set a header on a WebSocket: the agent
// panel sends it as `?token=` (weir logs paths without their query; a proxy in front may not).
//
// Untrusted text (events, errors, close reasons) only ever reaches the page through
// textContent: no innerHTML anywhere.
"use strict";

(() => {
  const LOG_CAP = 500;
  const STATS_EVERY_MS = 2000;
  const REQUEST_TIMEOUT_MS = 10000;
  const CHANNEL_RE = /^[A-Za-z0-9_.:/@-]{1,128}$/;
  const SHORT_DATA = 72; // data up to this many characters is shown on one line
  const CHART_WINDOW_MS = 5 * 60 * 1000; // the charts under the tiles show this much
  const CHART_CAP = Math.ceil(CHART_WINDOW_MS / STATS_EVERY_MS) + 1; // samples kept, at most
  const AGENT_RE = /^[A-Za-z0-9_.-]+$/; // as --agent takes them
  const AGENT_LINES = 500; // output lines each agent's panel keeps
  const AGENT_RETRY_MS = 2000; // first retry of a closed agent socket, doubled up to 30 s

  const $ = (id) => document.getElementById(id);
  const ui = {
    connectForm: $("connect-form"),
    token: $("token"),
    connect: $("connect"),
    status: $("status"),
    server: $("server"),
    subscribeForm: $("subscribe-form"),
    channel: $("channel"),
    subscribeError: $("subscribe-error"),
    subscriptions: $("subscriptions"),
    subscriptionsEmpty: $("subscriptions-empty"),
    channelList: $("channel-list"),
    publishForm: $("publish-form"),
    publishChannel: $("publish-channel"),
    publishData: $("publish-data"),
    publishError: $("publish-error"),
    publishResult: $("publish-result"),
    publish: $("publish"),
    log: $("log"),
    logCount: $("log-count"),
    logEmpty: $("log-empty"),
    logClear: $("log-clear"),
    stats: {
      connections: $("stats-connections"),
      rate: $("stats-rate"),
      channels: $("stats-channels"),
      uptime: $("stats-uptime"),
      memory: $("stats-memory"),
    },
    agentsCard: $("agents-card"),
    agentsNote: $("agents-note"),
    agentsError: $("agents-error"),
    agents: $("agents"),
    tunnelsCard: $("tunnels-card"),
    tunnelsNote: $("tunnels-note"),
    tunnels: $("tunnels"),
  };

  // ---- Where to connect ---------------------------------------------------------------------

  const query = new URLSearchParams(location.search);
  const override = query.get("server");
  const host = override || location.host;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const wsUrl = `${scheme}//${host}/ws`;
  // Another server's HTTP answers are not the page's to read (CSP connect-src, and no CORS).
  const remote = Boolean(override) && override !== location.host;
  ui.server.textContent = wsUrl;
  if (remote) {
    ui.server.classList.add("override");
    ui.server.title = "WebSocket endpoint (set by ?server= in the page address)";
  }

  // ---- State --------------------------------------------------------------------------------

  let ws = null; // the current WebSocket, if any
  let wanted = false; // the user wants to be connected (Connect pressed, Disconnect not)
  let ready = false; // connected and, if needed, authenticated
  let statsBusy = false; // a stats poll is under way
  let lastStats = null; // {at, count} for the message rate
  let reconnectTimer = 0;
  let reconnectDelay = 1000;
  let clientName = "";

  /** Channels the user asked for, in order: name -> {state, seq, li}. */
  const subs = new Map();

  // ---- Small helpers ------------------------------------------------------------------------

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  function pad(n, w = 2) {
    return String(n).padStart(w, "0");
  }

  function clock(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function duration(ms) {
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${pad(m)}m`;
    if (m) return `${m}m ${pad(s)}s`;
    return `${s}s`;
  }

  function mib(bytes) {
    const v = bytes / (1024 * 1024);
    return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} MiB`;
  }

  const CLOSE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1006: "connection lost",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "service restart",
    1013: "try again later",
  };

  function closeText(code, reason) {
    const name = CLOSE_NAMES[code] || "closed";
    return reason ? `${code} ${name}: ${reason}` : `${code} ${name}`;
  }

  // ---- JSON text, kept as sent --------------------------------------------------------------
  //
  // The hub delivers `data` byte for byte as published, so big integers and number formats
  // survive; JSON.parse would round them. The log shows the data's own text instead, taken out
  // of the frame and re-indented without touching any token.

  const WS = " \t\r\n";

  /** Index just past the JSON string starting at `i` (a '"'), or -1 if it does not end. */
  function skipString(text, i) {
    for (i++; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return -1;
  }

  /** Index just past the JSON value starting at `i`, or -1. */
  function skipValue(text, i) {
    const c = text[i];
    if (c === '"') return skipString(text, i);
    if (c === "{" || c === "[") {
      let depth = 0;
      while (i < text.length) {
        const d = text[i];
        if (d === '"') {
          i = skipString(text, i);
          if (i < 0) return -1;
          continue;
        }
        i++;
        if (d === "{" || d === "[") depth++;
        else if ((d === "}" || d === "]") && --depth === 0) return i;
      }
      return -1;
    }
    while (i < text.length && !",}]".includes(text[i]) && !WS.includes(text[i])) i++;
    return i;
  }

  /** The text of one member of the JSON object `text` (already known to be valid JSON). */
  function memberText(text, name) {
    let i = 0;
    const ws = () => {
      while (i < text.length && WS.includes(text[i])) i++;
    };
    ws();
    if (text[i] !== "{") return undefined;
    i++;
    for (;;) {
      ws();
      if (text[i] !== '"') return undefined;
      const start = i;
      i = skipString(text, i);
      if (i < 0) return undefined;
      const key = JSON.parse(text.slice(start, i));
      ws();
      if (text[i] !== ":") return undefined;
      i++;
      ws();
      const from = i;
      i = skipValue(text, i);
      if (i < 0) return undefined;
      if (key === name) return text.slice(from, i);
      ws();
      if (text[i] !== ",") return undefined;
      i++;
    }
  }

  /** Valid JSON text laid out again: indent 0 is one line, else that many spaces a level. */
  function formatJson(raw, indent) {
    let out = "";
    let depth = 0;
    let i = 0;
    const newline = () => (indent ? "\n" + " ".repeat(depth * indent) : "");
    while (i < raw.length) {
      const c = raw[i];
      if (c === '"') {
        const end = skipString(raw, i);
        if (end < 0) return raw;
        out += raw.slice(i, end);
        i = end;
        continue;
      }
      i++;
      if (WS.includes(c)) continue;
      if (c === "{" || c === "[") {
        let j = i;
        while (j < raw.length && WS.includes(raw[j])) j++;
        if (raw[j] === (c === "{" ? "}" : "]")) {
          out += c + raw[j];
          i = j + 1;
          continue;
        }
        depth++;
        out += c + newline();
      } else if (c === "}" || c === "]") {
        depth--;
        out += newline() + c;
      } else if (c === ",") {
        out += "," + (indent ? newline() : " ");
      } else if (c === ":") {
        out += ": ";
      } else {
        out += c;
      }
    }
    return out;
  }

  // ---- The log ------------------------------------------------------------------------------

  /**
   * Adds an entry at the top. kind: "message" | "info" | "error".
   * fields: {ts, channel, seq, from, text, data, raw (data's JSON text, preferred)}
   */
  function log(kind, fields) {
    const li = el("li", kind);
    li.append(el("span", "time", clock(fields.ts || Date.now())));
    const meta = el("div", "meta");
    if (fields.channel !== undefined) meta.append(el("span", "channel", fields.channel));
    if (fields.seq !== undefined) meta.append(el("span", "seq", `#${fields.seq}`));
    if (fields.from !== undefined) meta.append(el("span", "from", `from ${fields.from}`));
    if (fields.text !== undefined) meta.append(el("span", "text", fields.text));
    li.append(meta);
    if (fields.raw !== undefined || fields.data !== undefined) {
      let raw = fields.raw;
      if (raw === undefined) {
        try {
          raw = JSON.stringify(fields.data);
        } catch {
          raw = String(fields.data);
        }
      }
      const line = formatJson(raw, 0);
      li.append(el("pre", "data", line.length <= SHORT_DATA ? line : formatJson(raw, 2)));
    }
    ui.log.prepend(li);
    while (ui.log.childElementCount > LOG_CAP) ui.log.lastElementChild.remove();
    updateLogCount();
  }

  function updateLogCount() {
    const n = ui.log.childElementCount;
    ui.logEmpty.hidden = n > 0;
    ui.logCount.textContent = n ? `${n}${n >= LOG_CAP ? " (max)" : ""} entries` : "";
  }

  ui.logClear.addEventListener("click", () => {
    ui.log.replaceChildren();
    updateLogCount();
  });

  // ---- Requests -----------------------------------------------------------------------------

  class HubError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  /** Commands answered by `id` over one socket at a time: the hub's and the agents' envelope. */
  class Commands {
    constructor() {
      this.sock = null;
      this.pending = new Map(); // id -> {resolve, reject, timer}
      this.nextId = 1;
    }

    /** Sends a command (`paramsText`: the params object's JSON text); resolves with its result. */
    send(method, paramsText) {
      return new Promise((resolve, reject) => {
        const sock = this.sock;
        if (!sock || sock.readyState !== WebSocket.OPEN) {
          reject(new HubError("not_connected", "not connected"));
          return;
        }
        const id = this.nextId++;
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new HubError("timeout", `no answer to ${method} in ${REQUEST_TIMEOUT_MS / 1000} s`));
        }, REQUEST_TIMEOUT_MS);
        this.pending.set(id, { resolve, reject, timer });
        sock.send(`{"id":${id},"method":${JSON.stringify(method)},"params":${paramsText}}`);
      });
    }

    /** Settles the command `msg` answers; false when it answers none of ours. */
    answer(msg) {
      const p = msg.id === undefined || msg.id === null ? undefined : this.pending.get(msg.id);
      if (!p) return false;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new HubError(msg.error?.code || "error", msg.error?.message || "request failed"));
      return true;
    }

    /** Forgets the socket: every command still waiting fails with `reason`. */
    reset(reason) {
      this.sock = null;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new HubError("not_connected", reason));
      }
      this.pending.clear();
    }
  }

  const hub = new Commands();

  /**
   * Sends a hub command; resolves with its result, rejects with a HubError. `rawParams`, when
   * given, is the params object's JSON text (publish keeps the user's data byte for byte).
   */
  function request(method, params, rawParams) {
    return hub.send(method, rawParams !== undefined ? rawParams : JSON.stringify(params || {}));
  }

  // ---- Connection ---------------------------------------------------------------------------

  function updateConnectButton() {
    ui.connect.textContent = wanted ? "Disconnect" : "Connect";
    ui.connect.classList.toggle("primary", !wanted);
    ui.connect.classList.toggle("danger", wanted);
    ui.token.disabled = wanted;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    if (ws) return;
    wanted = true;
    updateConnectButton();
    setStatus("connecting", `Connecting to ${host}…`);
    let sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch (e) {
      wanted = false;
      updateConnectButton();
      setStatus("error", `Cannot connect: ${e.message}`);
      log("error", { text: `cannot connect to ${wsUrl}: ${e.message}` });
      return;
    }
    ws = sock;
    hub.sock = sock;
    sock.addEventListener("message", (ev) => {
      if (sock === ws) onFrame(ev.data);
    });
    sock.addEventListener("close", (ev) => {
      if (sock === ws) onClose(ev);
    });
  }

  function disconnect() {
    wanted = false;
    clearTimeout(reconnectTimer);
    reconnectTimer = 0;
    updateConnectButton();
    const sock = ws;
    teardown("disconnected");
    if (sock) sock.close(1000, "bye");
    setStatus("idle", "Disconnected");
    log("info", { text: "disconnected" });
  }

  /** Forgets the current socket and everything tied to it. */
  function teardown(reason) {
    ws = null;
    ready = false;
    clientName = "";
    lastStats = null;
    hub.reset(reason);
    closeAgents();
    for (const s of subs.values()) if (s.state === "subscribed") setSubState(s, "pending");
  }

  function onClose(ev) {
    const text = closeText(ev.code, ev.reason);
    teardown(text);
    if (!wanted) {
      setStatus("closed", `Closed (${text})`);
      return;
    }
    log("error", { text: `connection closed: ${text}` });
    // Closed by the server or the network: try again, backing off up to 30 s.
    const delay = reconnectDelay;
    reconnectDelay = Math.min(reconnectDelay * 2, 30000);
    setStatus("reconnecting", `Closed (${text}); retrying in ${Math.round(delay / 1000)} s`);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = 0;
      if (wanted) connect();
    }, delay);
  }

  /** Gives up on the connection for a reason that retrying would not fix. */
  function stop(statusText, logText, state = "error") {
    wanted = false;
    updateConnectButton();
    const sock = ws;
    teardown(logText);
    if (sock) sock.close(1000, "bye");
    setStatus(state, statusText);
    log(state === "error" ? "error" : "info", { text: logText });
  }

  ui.connectForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (wanted) disconnect();
    else {
      reconnectDelay = 1000;
      connect();
    }
  });

  async function onConnected(event) {
    clientName = event.client || "";
    log("info", { text: `connected to ${event.server || "server"} as ${clientName}` });
    const token = ui.token.value.trim();
    if (token) {
      setStatus("connecting", "Authenticating…");
      try {
        await request("authenticate", { token });
      } catch (e) {
        stop(`Authentication failed: ${e.message}`, `authenticate: ${e.code}: ${e.message}`);
        return;
      }
    } else if (event.auth_required) {
      stop("This server requires a token", "the server requires a token: enter it and connect", "auth");
      ui.token.focus();
      return;
    }
    ready = true;
    reconnectDelay = 1000;
    setStatus("open", `Connected as ${clientName}`);
    for (const s of subs.values()) sendSubscribe(s);
    pollStats();
    loadAgents(token);
  }

  function onFrame(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      log("error", { text: "the server sent a frame that is not JSON" });
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    if (msg.event === "connected") {
      onConnected(msg);
    } else if (msg.event === "message") {
      onMessage(msg, memberText(text, "data"));
    } else if (msg.event !== undefined) {
      log("info", { text: `event ${String(msg.event)}`, data: msg });
    } else if (hub.answer(msg)) {
      // A command's answer.
    } else if (msg.ok === false) {
      // An error with id null (the server could not read a command).
      log("error", { text: `${msg.error?.code || "error"}: ${msg.error?.message || ""}` });
    }
  }

  function onMessage(msg, raw) {
    const s = subs.get(msg.channel);
    if (s && typeof msg.seq === "number" && msg.seq > s.seq) s.seq = msg.seq;
    log("message", {
      ts: typeof msg.ts === "number" ? msg.ts : Date.now(),
      channel: String(msg.channel),
      seq: msg.seq,
      from: msg.from === clientName ? `${msg.from} (you)` : String(msg.from),
      data: msg.data,
      raw,
    });
  }

  // ---- Subscriptions ------------------------------------------------------------------------

  function setSubState(s, state, title) {
    s.state = state;
    s.li.dataset.state = state;
    s.li.title = title || (state === "pending" ? "waiting for the connection" : state);
  }

  function renderSubsEmpty() {
    ui.subscriptionsEmpty.hidden = subs.size > 0;
    ui.channelList.replaceChildren(...[...subs.keys()].map((name) => {
      const o = document.createElement("option");
      o.value = name;
      return o;
    }));
  }

  function addSubscription(name) {
    if (subs.has(name)) return subs.get(name);
    const li = el("li");
    li.dataset.channel = name;
    li.append(el("span", "name", name));
    const remove = el("button", "remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Unsubscribe from ${name}`);
    remove.title = `Unsubscribe from ${name}`;
    li.append(remove);
    const s = { name, state: "pending", seq: 0, li };
    remove.addEventListener("click", () => removeSubscription(s));
    setSubState(s, "pending");
    subs.set(name, s);
    ui.subscriptions.append(li);
    renderSubsEmpty();
    if (!ui.publishChannel.value) ui.publishChannel.value = name;
    return s;
  }

  async function sendSubscribe(s) {
    if (!ready) return;
    const params = { channel: s.name };
    // After a reconnect, ask for what was missed (the server replays kept messages after it).
    if (s.seq > 0) params.since = s.seq;
    try {
      const r = await request("subscribe", params);
      if (subs.get(s.name) !== s) return;
      setSubState(s, "subscribed", `subscribed; latest seq ${r.seq}, ${r.subscribers} subscriber(s)`);
      if (s.seq === 0 || r.seq < s.seq) s.seq = r.seq; // a restarted server starts over
      log("info", { channel: s.name, text: `subscribed (latest seq ${r.seq}, ${r.subscribers} subscriber${r.subscribers === 1 ? "" : "s"})` });
    } catch (e) {
      if (subs.get(s.name) !== s || e.code === "not_connected") return;
      setSubState(s, "error", `${e.code}: ${e.message}`);
      log("error", { channel: s.name, text: `subscribe failed: ${e.code}: ${e.message}` });
    }
  }

  async function removeSubscription(s) {
    subs.delete(s.name);
    s.li.remove();
    renderSubsEmpty();
    if (!ready || s.state !== "subscribed") return;
    try {
      await request("unsubscribe", { channel: s.name });
      log("info", { channel: s.name, text: "unsubscribed" });
    } catch (e) {
      if (e.code !== "not_connected") log("error", { channel: s.name, text: `unsubscribe failed: ${e.code}: ${e.message}` });
    }
  }

  function checkChannel(name) {
    if (!name) return "Enter a channel name.";
    if (!CHANNEL_RE.test(name)) return "Channel names are 1–128 characters of A–Z a–z 0–9 _ . : / @ -";
    return "";
  }

  ui.subscribeForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = ui.channel.value.trim();
    const problem = checkChannel(name);
    showError(ui.subscribeError, problem);
    ui.channel.setAttribute("aria-invalid", problem ? "true" : "false");
    if (problem) return;
    ui.channel.value = "";
    const existing = subs.get(name);
    const s = existing || addSubscription(name);
    if (!existing || s.state !== "subscribed") sendSubscribe(s);
  });

  ui.channel.addEventListener("input", () => {
    showError(ui.subscribeError, "");
    ui.channel.removeAttribute("aria-invalid");
  });

  // ---- Publish ------------------------------------------------------------------------------

  /** The error JSON.parse finds in the textarea, or "" when it is valid. */
  function checkData(text) {
    if (!text.trim()) return "Enter the JSON to publish, e.g. {\"hello\": \"world\"}.";
    try {
      JSON.parse(text);
      return "";
    } catch (e) {
      return `Invalid JSON: ${e.message}`;
    }
  }

  function validatePublish() {
    const problem = checkData(ui.publishData.value);
    showError(ui.publishError, problem);
    ui.publishData.setAttribute("aria-invalid", problem ? "true" : "false");
    return problem;
  }

  ui.publishData.addEventListener("input", () => {
    // Quietly clear an error as soon as the text becomes valid; show new ones on submit.
    if (!ui.publishError.hidden) validatePublish();
    ui.publishResult.textContent = "";
  });

  ui.publishData.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      ui.publishForm.requestSubmit();
    }
  });

  ui.publishForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ui.publishResult.textContent = "";
    const channel = ui.publishChannel.value.trim();
    const channelProblem = checkChannel(channel);
    ui.publishChannel.setAttribute("aria-invalid", channelProblem ? "true" : "false");
    const dataProblem = validatePublish();
    if (channelProblem) {
      showError(ui.publishError, channelProblem);
      return;
    }
    if (dataProblem) return;
    if (!ready) {
      showError(ui.publishError, "Not connected: press Connect first.");
      return;
    }
    // The data goes out as typed (trimmed), so numbers keep their exact text.
    const raw = ui.publishData.value.trim();
    const params = `{"channel":${JSON.stringify(channel)},"data":${raw}}`;
    ui.publish.disabled = true;
    try {
      const r = await request("publish", null, params);
      ui.publishResult.textContent = `Published to ${channel} as #${r.seq}`;
      if (!subs.has(channel)) log("info", { channel, seq: r.seq, text: "published (not subscribed here)" });
    } catch (e) {
      showError(ui.publishError, `${e.code}: ${e.message}`);
      log("error", { channel, text: `publish failed: ${e.code}: ${e.message}` });
    } finally {
      ui.publish.disabled = false;
    }
  });

  ui.publishChannel.addEventListener("input", () => ui.publishChannel.removeAttribute("aria-invalid"));

  // ---- Stats --------------------------------------------------------------------------------

  // From the hub's `stats` when connected; before that (a token to enter, a closed connection)
  // from GET /api/stats, which is open to all (docs/security.md), when the page may read it.
  async function pollStats() {
    if (statsBusy) return;
    statsBusy = true;
    let r = null;
    try {
      if (ready) r = await request("stats");
      else if (!remote) r = await fetchStats();
    } catch {
      r = null;
    } finally {
      statsBusy = false;
    }
    if (!r || typeof r !== "object") return;
    const now = performance.now();
    const count = (r.messages_in || 0) + (r.messages_out || 0);
    ui.stats.connections.textContent = String(r.connections);
    ui.stats.channels.textContent = String(r.channels);
    ui.stats.uptime.textContent = typeof r.uptime_ms === "number" ? duration(r.uptime_ms) : "–";
    // rss_bytes is 0 where the server cannot read it.
    ui.stats.memory.textContent = typeof r.rss_bytes === "number" && r.rss_bytes > 0 ? mib(r.rss_bytes) : "–";
    let rate;
    if (lastStats && now > lastStats.at) {
      rate = Math.max(0, (count - lastStats.count) / ((now - lastStats.at) / 1000));
      ui.stats.rate.textContent = rateText(rate);
      ui.stats.rate.title = `messages in + out per second (in ${r.messages_in}, out ${r.messages_out} in all)`;
    }
    lastStats = { at: now, count };
    addSample({
      t: now,
      connections: typeof r.connections === "number" ? r.connections : undefined,
      rate,
      memory: typeof r.rss_bytes === "number" && r.rss_bytes > 0 ? r.rss_bytes : undefined,
    });
  }

  async function fetchStats() {
    const res = await fetch("/api/stats", { cache: "no-store", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return res.ok ? res.json() : null;
  }

  function rateText(rate) {
    return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
  }

  // ---- Tunnels ------------------------------------------------------------------------------

  let tunnelsBusy = false;

  async function pollTunnels() {
    if (remote || tunnelsBusy) return;
    tunnelsBusy = true;
    let list = null;
    try {
      const token = ui.token.value.trim();
      const url = token ? `/api/tunnels?token=${encodeURIComponent(token)}` : "/api/tunnels";
      const r = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const body = r.ok ? await r.json() : null;
      list = Array.isArray(body?.tunnels) ? body.tunnels : null;
    } catch {
      list = null;
    } finally {
      tunnelsBusy = false;
    }
    ui.tunnelsCard.hidden = list === null;
    if (list === null) return;
    const count = (v) => (typeof v === "number" ? v : 0);
    const rows = list.map((t) => {
      const tr = el("tr");
      tr.dataset.agent = String(t?.name);
      const resets = Object.entries(t?.resets || {}).filter(([, n]) => count(n) > 0);
      const cells = [
        el("td", "name", String(t?.name)),
        el("td", "state", t?.connected ? "connected" : "down"),
        el("td", "num open", count(t?.streams_open)),
        el("td", "num streams", count(t?.streams)),
        el("td", "num in", bytesText(count(t?.bytes_in))),
        el("td", "num out", bytesText(count(t?.bytes_out))),
        el("td", "resets", resets.map(([cause, n]) => `${cause} ${count(n)}`).join(", ") || "–"),
      ];
      cells[1].dataset.state = t?.connected ? "up" : "down";
      tr.append(...cells);
      return tr;
    });
    ui.tunnels.replaceChildren(...rows);
    const up = list.filter((t) => t?.connected).length;
    ui.tunnelsNote.textContent = list.length ? `${up} of ${list.length} connected` : "no agent has connected yet";
  }

  function bytesText(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return mib(n);
  }

  // ---- Charts -------------------------------------------------------------------------------
  //
  // Under three tiles, a line of their last CHART_WINDOW_MS: the newest sample at the right
  // edge, zero at the bottom, the window's largest value at the top. Until the page has held
  // samples that long, the line spans the time it has (at least CHART_MIN_MS), so a young page
  // shows a line and not a tick at the edge; the chart's title says the span. A gap in the
  // samples (the page was disconnected) is a gap in the line. The ring keeps at most CHART_CAP
  // samples.

  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_W = 100;
  const CHART_H = 28;
  const CHART_MIN_MS = 10 * STATS_EVERY_MS;
  const samples = []; // {t (performance.now()), connections, rate, memory}, oldest first
  const charts = [
    { key: "connections", node: $("chart-connections"), label: "connections", text: String },
    { key: "rate", node: $("chart-rate"), label: "messages/s", text: rateText },
    { key: "memory", node: $("chart-memory"), label: "memory", text: mib },
  ];

  function svg(tag, className) {
    const e = document.createElementNS(SVG_NS, tag);
    if (className) e.setAttribute("class", className);
    return e;
  }

  for (const c of charts) {
    c.node.setAttribute("viewBox", `0 0 ${CHART_W} ${CHART_H}`);
    c.node.setAttribute("preserveAspectRatio", "none");
    c.title = svg("title");
    c.area = svg("path", "area");
    c.line = svg("path", "line");
    c.line.setAttribute("vector-effect", "non-scaling-stroke");
    c.node.append(c.title, c.area, c.line);
  }

  function addSample(sample) {
    samples.push(sample);
    while (samples.length > CHART_CAP || samples[0].t < sample.t - CHART_WINDOW_MS) samples.shift();
    for (const c of charts) drawChart(c, sample.t);
  }

  function drawChart(c, now) {
    const points = samples.filter((s) => typeof s[c.key] === "number");
    let max = 0;
    let min = Infinity;
    for (const s of points) {
      max = Math.max(max, s[c.key]);
      min = Math.min(min, s[c.key]);
    }
    const top = max > 0 ? max : 1;
    const span = points.length ? Math.min(CHART_WINDOW_MS, Math.max(CHART_MIN_MS, now - points[0].t)) : CHART_MIN_MS;
    let line = "";
    let area = "";
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        line += `M${run.map(([x, y]) => `${x} ${y}`).join("L")}`;
        area += `M${run[0][0]} ${CHART_H}L${run.map(([x, y]) => `${x} ${y}`).join("L")}L${run[run.length - 1][0]} ${CHART_H}Z`;
      }
      run = [];
    };
    let prev = null;
    for (const s of points) {
      if (prev && s.t - prev.t > STATS_EVERY_MS * 2.5) flush();
      const x = (CHART_W - ((now - s.t) / span) * CHART_W).toFixed(2);
      const y = (CHART_H - 1 - (s[c.key] / top) * (CHART_H - 2)).toFixed(2);
      run.push([x, y]);
      prev = s;
    }
    flush();
    c.line.setAttribute("d", line);
    c.area.setAttribute("d", area);
    c.title.textContent = points.length
      ? `${c.label} over the last ${duration(span)}: ${c.text(min)} to ${c.text(max)}`
      : "";
  }

  // ---- Agents -------------------------------------------------------------------------------
  //
  // Each `--agent` (docs/protocol.md, "Agents") on a socket of its own at /ws/agents/NAME,
  // opened once the hub connection is ready and closed with it. Its `connected` event brings the
  // state and the last lines, then `output` and `status` events keep the panel current.

  const agentNames = query.getAll("agent").filter((n) => AGENT_RE.test(n));
  const agents = new Map(); // name -> view, in the server's order
  let agentToken = ""; // the token the hub connection was made with
  let agentsLoad = 0; // a list that arrives after a newer load began (or a teardown) is dropped

  async function loadAgents(token) {
    const load = ++agentsLoad;
    agentToken = token;
    let names = agentNames;
    if (!names.length && !remote) {
      try {
        names = await fetchAgentNames(token);
      } catch (e) {
        if (load !== agentsLoad) return;
        ui.agentsCard.hidden = false;
        showError(ui.agentsError, `Cannot list the agents: ${e.message}`);
        return;
      }
    }
    if (load !== agentsLoad || !ready) return;
    showError(ui.agentsError, "");
    for (const [name, a] of agents) {
      if (names.includes(name)) continue;
      closeAgent(a);
      a.root.remove();
      agents.delete(name);
    }
    for (const name of names) {
      let a = agents.get(name);
      if (!a) {
        a = agentView(name);
        agents.set(name, a);
      }
      ui.agents.append(a.root); // in the server's order
      openAgent(a);
    }
    ui.agentsCard.hidden = agents.size === 0;
    ui.agentsNote.textContent = `${agents.size} supervised`;
  }

  /** The agents' names from GET /api/agents; none when the server has none (404). */
  async function fetchAgentNames(token) {
    const url = token ? `/api/agents?token=${encodeURIComponent(token)}` : "/api/agents";
    const r = await fetch(url, { cache: "no-store", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (r.status === 404) return [];
    if (!r.ok) throw new Error(`GET /api/agents: ${r.status} ${(await r.text()).trim()}`);
    const body = await r.json();
    const list = Array.isArray(body?.agents) ? body.agents : [];
    return list.map((a) => String(a?.name)).filter((n) => AGENT_RE.test(n));
  }

  function agentView(name) {
    const root = el("article", "agent");
    root.dataset.agent = name;
    const head = el("header", "agent-head");
    const state = el("span", "agent-state", "…");
    const facts = el("dl", "agent-facts");
    const fact = (label, className) => {
      const dd = el("dd", className, "–");
      const div = el("div");
      div.append(el("dt", "", label), dd);
      facts.append(div);
      return dd;
    };
    const pid = fact("pid", "agent-pid");
    const restarts = fact("restarts", "agent-restarts");
    const started = fact("started", "agent-started");
    head.append(el("h3", "agent-name", name), state, facts);
    const actions = el("div", "agent-actions");
    const buttons = {};
    for (const [action, label] of [["pause", "Pause"], ["resume", "Resume"], ["kill", "Kill"], ["restart", "Restart"]]) {
      const b = el("button", "small", label);
      b.type = "button";
      b.dataset.action = action;
      actions.append(b);
      buttons[action] = b;
    }
    buttons.kill.classList.add("danger");
    buttons.kill.title = "SIGTERM; it stays stopped until started again";
    const output = el("ol", "agent-output");
    output.setAttribute("role", "log");
    output.setAttribute("aria-label", `Output of ${name}`);
    const form = el("form", "row agent-input");
    form.autocomplete = "off";
    const input = el("input");
    input.placeholder = "a line for its standard input";
    input.spellcheck = false;
    input.autocapitalize = "off";
    input.setAttribute("aria-label", `Input line for ${name}`);
    const send = el("button", "", "Send");
    send.type = "submit";
    form.append(input, send);
    const error = el("p", "field-error agent-error");
    error.hidden = true;
    root.append(head, actions, output, form, error);
    const a = {
      name,
      root,
      ui: { state, pid, restarts, started, buttons, output, input, send, error },
      cmds: new Commands(),
      sock: null,
      online: false,
      info: null, // the state, as the server last sent it
      retry: 0,
      delay: AGENT_RETRY_MS,
    };
    actions.addEventListener("click", (ev) => {
      const action = ev.target.closest("button")?.dataset.action;
      if (!action) return;
      // With no process, Restart starts it (the button says Start).
      const live = a.info?.state === "running" || a.info?.state === "paused";
      agentCommand(a, action === "restart" && !live ? "start" : action, {});
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const line = input.value;
      if (await agentCommand(a, "send_input", { data: `${line}\n` })) input.value = "";
    });
    renderAgent(a);
    return a;
  }

  function renderAgent(a) {
    const s = a.info;
    const state = s ? String(s.state) : "unknown";
    a.root.dataset.state = state;
    a.root.dataset.conn = a.online ? "open" : "closed";
    let text = a.online ? state : a.sock ? "connecting…" : s ? `${state} (not connected)` : "not connected";
    if (s && s.state === "exited") {
      if (typeof s.exit_code === "number") text += `, exit ${s.exit_code}`;
      else if (typeof s.signal === "number") text += `, signal ${s.signal}`;
    }
    a.ui.state.textContent = text;
    a.ui.pid.textContent = typeof s?.pid === "number" ? String(s.pid) : "–";
    a.ui.restarts.textContent = typeof s?.restarts === "number" ? String(s.restarts) : "–";
    a.ui.started.textContent = typeof s?.started_at === "number" ? clock(s.started_at).slice(0, 8) : "–";
    const live = state === "running" || state === "paused";
    const b = a.ui.buttons;
    b.pause.disabled = !a.online || state !== "running";
    b.resume.disabled = !a.online || state !== "paused";
    b.kill.disabled = !a.online || !live;
    b.restart.disabled = !a.online || !s;
    b.restart.textContent = live || !s ? "Restart" : "Start";
    a.ui.send.disabled = !a.online || !live;
  }

  function appendOutput(a, lines) {
    const out = a.ui.output;
    // Follow the newest line unless the reader scrolled up.
    const following = out.scrollHeight - out.scrollTop - out.clientHeight < 8;
    for (const line of lines) {
      out.append(el("li", line?.stream === "stderr" ? "stderr" : "stdout", String(line?.data ?? "")));
    }
    while (out.childElementCount > AGENT_LINES) out.firstElementChild.remove();
    if (following) out.scrollTop = out.scrollHeight;
  }

  async function agentCommand(a, method, params) {
    showError(a.ui.error, "");
    try {
      const r = await a.cmds.send(method, JSON.stringify(params));
      // pause, resume, start and restart answer with the state.
      if (r && typeof r === "object" && typeof r.state === "string") {
        a.info = r;
        renderAgent(a);
      }
      return true;
    } catch (e) {
      showError(a.ui.error, `${method}: ${e.code}: ${e.message}`);
      return false;
    }
  }

  function openAgent(a) {
    clearTimeout(a.retry);
    a.retry = 0;
    if (a.sock || !ready) return;
    const q = agentToken ? `?token=${encodeURIComponent(agentToken)}` : "";
    let sock;
    try {
      sock = new WebSocket(`${scheme}//${host}/ws/agents/${encodeURIComponent(a.name)}${q}`);
    } catch (e) {
      showError(a.ui.error, `cannot connect: ${e.message}`);
      return;
    }
    a.sock = sock;
    a.cmds.sock = sock;
    renderAgent(a);
    sock.addEventListener("message", (ev) => {
      if (a.sock === sock) onAgentFrame(a, ev.data);
    });
    sock.addEventListener("close", (ev) => {
      if (a.sock === sock) onAgentClose(a, ev);
    });
  }

  function onAgentFrame(a, text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    if (msg.event === "connected") {
      a.online = true;
      a.delay = AGENT_RETRY_MS;
      a.info = msg.agent || null;
      a.ui.output.replaceChildren();
      appendOutput(a, Array.isArray(msg.log) ? msg.log : []);
      showError(a.ui.error, "");
      renderAgent(a);
    } else if (msg.event === "status") {
      a.info = msg.agent || a.info;
      renderAgent(a);
    } else if (msg.event === "output") {
      appendOutput(a, [msg]);
    } else if (!a.cmds.answer(msg) && msg.ok === false) {
      showError(a.ui.error, `${msg.error?.code || "error"}: ${msg.error?.message || ""}`);
    }
  }

  function onAgentClose(a, ev) {
    const text = closeText(ev.code, ev.reason);
    a.sock = null;
    a.online = false;
    a.cmds.reset(text);
    renderAgent(a);
    if (!ready) return;
    showError(a.ui.error, `connection closed: ${text}; retrying in ${Math.round(a.delay / 1000)} s`);
    a.retry = setTimeout(() => openAgent(a), a.delay);
    a.delay = Math.min(a.delay * 2, 30000);
  }

  function closeAgent(a) {
    clearTimeout(a.retry);
    a.retry = 0;
    const sock = a.sock;
    a.sock = null;
    a.online = false;
    a.cmds.reset("disconnected");
    if (sock) sock.close(1000, "bye");
    renderAgent(a);
  }

  /** With the hub connection: every agent socket is closed, the panels stay as they were. */
  function closeAgents() {
    agentsLoad++;
    for (const a of agents.values()) closeAgent(a);
  }

  // ---- Start --------------------------------------------------------------------------------

  for (const name of query.getAll("channel")) {
    if (!checkChannel(name)) addSubscription(name);
  }
  renderSubsEmpty();
  updateLogCount();
  updateConnectButton();
  // Connect at once: a server that wants a token says so in its first frame, and the page asks.
  connect();
  setInterval(pollStats, STATS_EVERY_MS);
  pollTunnels();
  setInterval(pollTunnels, STATS_EVERY_MS);
})();
