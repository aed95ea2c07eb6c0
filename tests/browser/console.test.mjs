// Headless Chromium test of weir's web console (src/http/console/).
//
//   node tests/browser/console.test.mjs        (after `npm ci` in tests/browser)
//
// Starts weir on 127.0.0.1:0 (WEIR_BIN, default target/release/weir) with an agent (a shell
// that ticks and echoes its input), opens the console, and checks it end to end against the
// real hub and agent: it connects without a click, subscribe, a message published from outside
// shows up in the log, a message published from the page reaches an outside client,
// client-side JSON validation, live stats and their charts, the agent panel (state, pid,
// output, pause, resume, input, kill, start, restart), the tunnels card (a weir tunnel agent
// dialled in), unsubscribe, tokens, and an unexpected
// close. It saves docs/console.png (1280 wide, the whole page) and
// tests/browser/console-phone.png (390x844).
//
// The page comes from weir's own GET / (the files embedded in the binary). With
// CONSOLE_FROM=static it comes from a small static server here instead, straight from
// src/http/console/, with `?server=` pointing the page's WebSocket at weir: handy while editing
// the page, since the binary embeds the files at build time.
// CHROMIUM: the browser binary (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const consoleDir = join(root, "src", "http", "console");
const weirBin = resolve(root, process.env.WEIR_BIN || "target/release/weir");
const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";
const mode = process.env.CONSOLE_FROM || "weir";
// The agent: a tick a second from a background loop, and each input line echoed.
const AGENT = `demo=sh -c 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 1; done & while read -r l; do echo "echo: $l"; done'`;

// Nothing here may take long: every wait is bounded, and the whole run is too.
const TOTAL_MS = 90_000;
const STEP_MS = 15_000;
const WAIT_MS = 8_000;
const watchdog = setTimeout(() => {
  console.error(`console.test: still running after ${TOTAL_MS / 1000} s; giving up`);
  cleanup();
  process.exit(1);
}, TOTAL_MS);
watchdog.unref();

const children = []; // weir processes
let weir = null; // the main one
let weirAddr = "";
let staticServer = null;
let context = null;
let page = null;
let profileDir = "";
const outside = []; // outside ws clients
const pageErrors = [];
const consoleErrors = [];

function cleanup() {
  for (const c of outside) c.terminate();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (staticServer) staticServer.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}

/** Starts weir on a free port; resolves with "127.0.0.1:PORT" from its `addr=` log line. */
function startWeir(extra = []) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(weirBin, ["--listen", "127.0.0.1:0", "--log-level", "info", ...extra], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(child);
    let weirLog = "";
    const timer = setTimeout(() => reject(new Error(`weir printed no addr= in 10 s:\n${weirLog}`)), 10_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${weirBin}: ${e.message} (build it with cargo build --release)`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`weir exited (${code ?? signal}) before listening:\n${weirLog}`));
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      weirLog += chunk;
      const m = /addr=(127\.0\.0\.1:\d+)/.exec(weirLog);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m[1]);
      }
    });
  });
}

/** Serves the three console files on 127.0.0.1:0. */
function startStatic() {
  const types = {
    "/": ["index.html", "text/html; charset=utf-8"],
    "/console.css": ["console.css", "text/css; charset=utf-8"],
    "/console.js": ["console.js", "text/javascript; charset=utf-8"],
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const hit = types[path];
    if (!hit || req.method !== "GET") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": hit[1], "cache-control": "no-store" });
    res.end(readFileSync(join(consoleDir, hit[0])));
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

/** Whether weir itself serves the console at GET /. */
async function weirServesConsole() {
  try {
    const r = await fetch(`http://${weirAddr}/`, { signal: AbortSignal.timeout(3000) });
    return r.ok && (await r.text()).includes('id="log"');
  } catch {
    return false;
  }
}

/** An outside hub client: resolves once `connected` arrived. */
function hubClient() {
  return new Promise((ok, fail) => {
    const sock = new WebSocket(`ws://${weirAddr}/ws`);
    outside.push(sock);
    const client = { sock, events: [], answers: new Map(), nextId: 1, waiters: [] };
    const timer = setTimeout(() => fail(new Error("outside client: no connected event")), WAIT_MS);
    sock.on("error", (e) => fail(e));
    sock.on("message", (buf) => {
      const msg = JSON.parse(buf.toString());
      if (msg.event === "connected") {
        clearTimeout(timer);
        ok(client);
      } else if (msg.event) {
        client.events.push(msg);
      } else {
        client.answers.set(msg.id, msg);
      }
      for (const w of client.waiters.splice(0)) w();
    });
  });
}

/** Waits until `pred()` holds, re-checking at each frame the client receives. */
function until(client, pred, what) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    const check = () => {
      const v = pred();
      if (v) {
        clearTimeout(timer);
        ok(v);
      } else client.waiters.push(check);
    };
    check();
  });
}

async function call(client, method, params) {
  const id = client.nextId++;
  client.sock.send(JSON.stringify({ id, method, params }));
  const answer = await until(client, () => client.answers.get(id), `the answer to ${method}`);
  assert.equal(answer.ok, true, `${method}: ${JSON.stringify(answer.error)}`);
  return answer.result;
}

// The steps build on each other: after a failure the rest are skipped, not left to time out.
let failed = false;
function step(name, fn) {
  test(name, { timeout: STEP_MS }, async (t) => {
    if (failed) return t.skip("an earlier step failed");
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

let publisher; // an outside client that publishes
let listener; // an outside client subscribed to "demo"

before(async () => {
  // It takes tunnel agents too; one (weir tunnel) dials it for the tunnels card.
  const tunnelTokens = join(mkdtempSync(join(tmpdir(), "weir-console-tunnel-")), "tokens");
  writeFileSync(tunnelTokens, "console-tunnel-token\n");
  weirAddr = await startWeir(["--agent", AGENT, "--tunnel-token-file", tunnelTokens]);
  weir = children[0];
  const tunnelArgs = ["tunnel", `ws://${weirAddr}/_tunnel`, "--name", "home", "--token-file", tunnelTokens];
  children.push(spawn(weirBin, [...tunnelArgs, "--expose", "web=ws://127.0.0.1:9/"], { stdio: "ignore" }));
  let url;
  assert.ok(["weir", "static"].includes(mode), `CONSOLE_FROM is weir or static, not ${mode}`);
  if (mode === "weir") {
    assert.ok(await weirServesConsole(), `weir does not serve the console at GET / (${weirBin})`);
    url = `http://${weirAddr}/`;
    console.log(`# page served by weir at ${url}`);
  } else {
    staticServer = await startStatic();
    const { port } = staticServer.address();
    // From another origin the page cannot read GET /api/agents: it is told the agent's name.
    url = `http://127.0.0.1:${port}/?server=${weirAddr}&agent=demo`;
    console.log(`# page served by the test's static server at ${url} (weir at ${weirAddr})`);
  }
  profileDir = mkdtempSync(join(tmpdir(), "weir-console-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumBin,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: { width: 1280, height: 800 },
    colorScheme: "light",
    timeout: 20_000,
  });
  context.setDefaultTimeout(WAIT_MS);
  page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  await page.goto(url, { waitUntil: "load" });
  [publisher, listener] = await Promise.all([hubClient(), hubClient()]);
  await call(listener, "subscribe", { channel: "demo" });
});

after(async () => {
  if (context) await context.close().catch(() => {});
  cleanup();
  clearTimeout(watchdog);
});

step("connects on its own", async () => {
  // No click: a server that needs no token is connected to as the page loads.
  await page.waitForSelector('#status[data-state="open"]');
  assert.match(await page.textContent("#status"), /^Connected as c-\d+\.\d+$/);
  assert.equal(await page.textContent("#connect"), "Disconnect");
});

step("subscribes to demo", async () => {
  await page.fill("#channel", "demo");
  await page.click("#subscribe");
  await page.waitForSelector('#subscriptions li[data-channel="demo"][data-state="subscribed"]');
  // A bad name is refused on the page, with a message.
  await page.fill("#channel", "no spaces");
  await page.click("#subscribe");
  await page.waitForSelector("#subscribe-error:not([hidden])");
  assert.equal(await page.locator("#subscriptions li").count(), 1);
});

step("a message published from outside appears in the log", async () => {
  const r = await call(publisher, "publish", {
    channel: "demo",
    data: { hello: "from node", n: 1, tags: ["a", "<b>"] },
  });
  const entry = page.locator("#log li.message", { hasText: "from node" });
  await entry.first().waitFor();
  const text = await entry.first().textContent();
  assert.ok(text.includes(`#${r.seq}`), `seq #${r.seq} in ${text}`);
  assert.ok(text.includes("demo"));
  // Untrusted text is text, not markup.
  assert.equal(await page.locator("#log b").count(), 0);
  assert.ok(text.includes('"<b>"'));
});

step("a message published over HTTP appears in the log", async () => {
  const r = await fetch(`http://${weirAddr}/api/channels/demo/publish`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"via": "http", "n": 2}',
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(r.status, 200);
  const { seq } = await r.json();
  const entry = page.locator("#log li.message", { hasText: '"via": "http"' }).first();
  await entry.waitFor();
  assert.ok((await entry.textContent()).includes(`#${seq}`));
});

step("a message published from the page reaches an outside client", async () => {
  await page.fill("#publish-channel", "demo");
  await page.fill("#publish-data", '{"from": "page", "big": 12345678901234567890, "ok": true}');
  await page.click("#publish");
  const ev = await until(
    listener,
    () => listener.events.find((e) => e.channel === "demo" && e.data?.from === "page"),
    "the page's message at the outside client",
  );
  assert.equal(ev.data.ok, true);
  await page.waitForSelector("#publish-result:text-matches('Published to demo as #\\\\d+')");
  // The page subscribed to demo too, so its own message is in its log, numbers exactly as sent.
  const own = page.locator("#log li.message", { hasText: '"page"' }).first();
  await own.waitFor();
  assert.ok((await own.textContent()).includes("12345678901234567890"));
});

step("invalid JSON is refused on the page", async () => {
  const before = listener.events.length;
  await page.fill("#publish-data", '{"oops": ');
  await page.click("#publish");
  await page.waitForSelector("#publish-error:not([hidden])");
  assert.match(await page.textContent("#publish-error"), /^Invalid JSON/);
  assert.equal(await page.getAttribute("#publish-data", "aria-invalid"), "true");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(listener.events.length, before, "nothing was published");
  await page.fill("#publish-data", '{"fixed": true}');
  await page.click("#publish");
  await page.waitForSelector("#publish-error", { state: "hidden" });
});

step("stats show the connections", async () => {
  await page.waitForFunction(() => Number(document.getElementById("stats-connections").textContent) >= 2, null, {
    timeout: 6000,
  });
  await page.waitForFunction(() => /^\d+(\.\d)?$/.test(document.getElementById("stats-rate").textContent), null, {
    timeout: 6000,
  });
  assert.match(await page.textContent("#stats-uptime"), /^\d+[smhd]/);
  if (mode === "weir") assert.match(await page.textContent("#stats-memory"), /^\d+(\.\d)? MiB$/);
});

/** The points of a chart's line (its path's coordinate pairs). */
function chartPoints(id) {
  return page.evaluate((id) => {
    const d = document.querySelector(`#${id} path.line`)?.getAttribute("d") || "";
    return (d.match(/[ML]/g) || []).length;
  }, id);
}

step("the tiles draw charts of the last minutes", async () => {
  // A sample every 2 s: three points of connections, two of messages/s after three samples.
  await page.waitForFunction(
    () => ((document.querySelector("#chart-connections path.line")?.getAttribute("d") || "").match(/L/g) || []).length >= 2,
    null,
    { timeout: 9000 },
  );
  assert.ok((await chartPoints("chart-connections")) >= 3);
  assert.ok((await chartPoints("chart-rate")) >= 2);
  if (mode === "weir") assert.ok((await chartPoints("chart-memory")) >= 3);
  // Under the tile, within its box: x in 0..100, y in 0..28 (the viewBox).
  const d = await page.getAttribute("#chart-connections path.line", "d");
  for (const [, x, y] of d.matchAll(/[ML](-?[\d.]+) (-?[\d.]+)/g)) {
    assert.ok(x >= 0 && x <= 100 && y >= 0 && y <= 28, `point ${x} ${y} in ${d}`);
  }
  assert.match(await page.textContent("#chart-connections title"), /^connections over the last \d+s: \d+ to \d+$/);
});

step("the tunnels card lists the tunnel's agent (GET /api/tunnels)", async () => {
  if (mode !== "weir") return; // the page does not read another server's API
  const row = '#tunnels tr[data-agent="home"]';
  await page.waitForSelector(`${row} td.state[data-state="up"]`, { timeout: WAIT_MS });
  assert.equal(await page.isVisible("#tunnels-card"), true);
  assert.equal(await page.textContent(`${row} td.state`), "connected");
  assert.equal(await page.textContent(`${row} td.open`), "0");
  assert.equal(await page.textContent(`${row} td.in`), "0 B");
  assert.equal(await page.textContent("#tunnels-note"), "1 of 1 connected");
});

const agentCard = '.agent[data-agent="demo"]';

/** The agent as the server lists it (GET /api/agents). */
async function agentState() {
  const r = await fetch(`http://${weirAddr}/api/agents`, { signal: AbortSignal.timeout(WAIT_MS) });
  assert.equal(r.status, 200);
  return (await r.json()).agents.find((a) => a.name === "demo");
}

step("the agent panel shows the agent, its state, pid and output", async () => {
  await page.waitForSelector(`${agentCard}[data-state="running"][data-conn="open"]`);
  assert.equal(await page.isVisible("#agents-card"), true);
  const server = await agentState();
  assert.equal(await page.textContent(`${agentCard} .agent-pid`), String(server.pid));
  assert.equal(await page.textContent(`${agentCard} .agent-restarts`), "0");
  assert.equal(await page.textContent(`${agentCard} .agent-state`), "running");
  // Live output: a tick that comes after the page connected.
  const ticks = await page.locator(`${agentCard} .agent-output li`, { hasText: /^tick \d+$/ }).count();
  await page.waitForFunction(
    ([sel, n]) => [...document.querySelectorAll(`${sel} .agent-output li`)].filter((li) => /^tick \d+$/.test(li.textContent)).length > n,
    [agentCard, ticks],
  );
  assert.equal(await page.isDisabled(`${agentCard} button[data-action="resume"]`), true);
});

step("pause and resume", async () => {
  await page.click(`${agentCard} button[data-action="pause"]`);
  await page.waitForSelector(`${agentCard}[data-state="paused"]`);
  assert.equal((await agentState()).state, "paused");
  assert.equal(await page.isDisabled(`${agentCard} button[data-action="pause"]`), true);
  await page.click(`${agentCard} button[data-action="resume"]`);
  await page.waitForSelector(`${agentCard}[data-state="running"]`);
  assert.equal((await agentState()).state, "running");
});

step("a line sent to the agent's input is echoed in its output", async () => {
  await page.fill(`${agentCard} .agent-input input`, "hello <b>agent</b>");
  await page.click(`${agentCard} .agent-input button`);
  await page.locator(`${agentCard} .agent-output li`, { hasText: "echo: hello <b>agent</b>" }).waitFor();
  assert.equal(await page.inputValue(`${agentCard} .agent-input input`), "");
  assert.equal(await page.locator(`${agentCard} .agent-output b`).count(), 0, "output is text");
});

step("kill, start and restart count the restarts", async () => {
  const pid0 = await page.textContent(`${agentCard} .agent-pid`);
  await page.click(`${agentCard} button[data-action="kill"]`);
  await page.waitForSelector(`${agentCard}[data-state="stopped"]`);
  assert.equal(await page.textContent(`${agentCard} .agent-pid`), "–");
  assert.equal(await page.textContent(`${agentCard} button[data-action="restart"]`), "Start");
  assert.equal(await page.isDisabled(`${agentCard} .agent-input button`), true);
  await page.click(`${agentCard} button[data-action="restart"]`);
  await page.waitForSelector(`${agentCard}[data-state="running"]`);
  await page.waitForSelector(`${agentCard} .agent-restarts:text-is("1")`);
  const pid1 = await page.textContent(`${agentCard} .agent-pid`);
  assert.match(pid1, /^\d+$/);
  assert.notEqual(pid1, pid0);
  await page.click(`${agentCard} button[data-action="restart"]`);
  await page.waitForSelector(`${agentCard} .agent-restarts:text-is("2")`);
  await page.waitForSelector(`${agentCard}[data-state="running"]`);
  const server = await agentState();
  assert.equal(server.restarts, 2);
  assert.equal(await page.textContent(`${agentCard} .agent-pid`), String(server.pid));
  assert.notEqual(String(server.pid), pid1);
  await page.locator(`${agentCard} .agent-output li`, { hasText: "tick 1" }).last().waitFor();
});

step("screenshots", async () => {
  // A few more events, so the log looks like a log.
  await call(publisher, "publish", { channel: "demo", data: { build: 1042, status: "passed", ms: 5731 } });
  await call(publisher, "publish", { channel: "demo", data: "plain string" });
  await call(publisher, "publish", { channel: "demo", data: [1, 2, 3] });
  await page.locator("#log li.message", { hasText: "plain string" }).first().waitFor();
  await page.locator("#log li.message", { hasText: "5731" }).first().waitFor();
  await page.fill("#channel", "builds");
  await page.click("#subscribe");
  await page.waitForSelector('#subscriptions li[data-channel="builds"][data-state="subscribed"]');
  await page.fill("#publish-data", '{\n  "hello": "world"\n}');
  await page.locator("#publish-data").blur();
  await page.waitForFunction(() => document.getElementById("stats-rate").textContent !== "–");
  await page.fill(`${agentCard} .agent-input input`, "status");
  await page.locator(`${agentCard} .agent-input input`).blur();
  await page.screenshot({ path: join(root, "docs", "console.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(here, "console-phone.png") });
  if (process.env.SCREENSHOTS_EXTRA) {
    // For a look only (not committed): the whole phone page, and the dark theme.
    await page.screenshot({ path: join(here, "console-phone-full.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: join(here, "console-phone-dark.png") });
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: join(here, "console-dark.png") });
    await page.emulateMedia({ colorScheme: "light" });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

step("unsubscribes", async () => {
  await page.click('#subscriptions li[data-channel="builds"] button');
  await page.waitForSelector('#subscriptions li[data-channel="builds"]', { state: "detached" });
  await page.locator("#log li.info", { hasText: "unsubscribed" }).first().waitFor();
  // No subscriber is left; a channel that never had a message is then forgotten by the hub.
  const id = publisher.nextId++;
  publisher.sock.send(JSON.stringify({ id, method: "presence", params: { channel: "builds" } }));
  const answer = await until(publisher, () => publisher.answers.get(id), "the answer to presence");
  const gone = answer.ok ? answer.result.subscribers === 0 : answer.error.code === "not_found";
  assert.ok(gone, `presence after unsubscribing: ${JSON.stringify(answer)}`);
});

step("tokens", async () => {
  // A second weir that wants a token; a fresh page from the same place, pointed at it.
  const addr = await startWeir(["--token", "s3cret", "--agent", AGENT]);
  const p = await context.newPage();
  p.on("pageerror", (e) => pageErrors.push(e.message));
  const origin = staticServer ? `http://127.0.0.1:${staticServer.address().port}` : `http://${addr}`;
  await p.goto(`${origin}/?server=${addr}${staticServer ? "&agent=demo" : ""}`);
  // It connects on its own, learns that a token is needed, and asks for it.
  await p.waitForSelector('#status[data-state="auth"]');
  assert.equal(await p.textContent("#status"), "This server requires a token");
  assert.equal(await p.textContent("#connect"), "Connect");
  assert.equal(await p.evaluate(() => document.activeElement?.id), "token");
  assert.equal(await p.isVisible("#agents-card"), false);
  if (mode === "weir") {
    // Still, the tiles show the server's totals (GET /api/stats, open to all) and chart them.
    await p.waitForFunction(() => /^\d+$/.test(document.getElementById("stats-connections").textContent));
    await p.waitForSelector("#chart-memory path.line[d^=M]", { state: "attached" });
  }
  await p.fill("#token", "wrong");
  await p.click("#connect");
  await p.waitForSelector('#status[data-state="error"]:text-matches("^Authentication failed")');
  await p.fill("#token", "s3cret");
  await p.click("#connect");
  await p.waitForSelector('#status[data-state="open"]');
  assert.equal(await p.isDisabled("#token"), true);
  // The token went in the authenticate method, not in the URL.
  assert.ok(!(await p.evaluate(() => location.href)).includes("s3cret"));
  // With it the agent panel lists and watches the agent (the token in ?token=, the only way).
  await p.waitForSelector(`${agentCard}[data-state="running"][data-conn="open"]`);
  await p.close();
});

step("no script errors", () => {
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
});

step("disconnect and an unexpected close", async () => {
  await page.click("#connect");
  await page.waitForSelector('#status[data-state="idle"]');
  assert.equal(await page.textContent("#connect"), "Connect");
  // The agent's socket is closed with the hub's; its panel stays, its buttons off.
  await page.waitForSelector(`${agentCard}[data-conn="closed"]`);
  assert.equal(await page.isDisabled(`${agentCard} button[data-action="pause"]`), true);
  await page.click("#connect");
  await page.waitForSelector('#status[data-state="open"]');
  await page.waitForSelector(`${agentCard}[data-state="running"][data-conn="open"]`);
  // The subscription survived the reconnect.
  await page.waitForSelector('#subscriptions li[data-channel="demo"][data-state="subscribed"]');
  // The server goes away: the page says how it closed and that it will retry.
  weir.kill("SIGTERM");
  await page.waitForSelector('#status[data-state="reconnecting"]', { timeout: 12_000 });
  const status = await page.textContent("#status");
  assert.match(status, /^Closed \(\d{4}/, status);
  assert.match(status, /retrying in \d+ s/);
  assert.deepEqual(pageErrors, []);
});
