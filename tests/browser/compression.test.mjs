// Headless Chromium (which offers permessage-deflate) against weir with --compression.
//
//   node tests/browser/compression.test.mjs        (after `npm ci` in tests/browser)
//
// For each mode (shared, dedicated): a page opens ws://weir/echo and ws://weir/up, a --route to
// a Node `ws` upstream with perMessageDeflate, checks that the extension was agreed
// (WebSocket.extensions), and echoes text, a 3 MiB text, 1 MiB binary, non-ASCII and empty
// messages through each; through the route it also asks for a message the upstream sends
// compressed in three fragments. WEIR_BIN: the binary (default target/release/weir); CHROMIUM:
// the browser (default /usr/bin/chromium). Every wait is bounded, and the whole run is too.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const weirBin = resolve(root, process.env.WEIR_BIN || "target/release/weir");
const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";

const children = [];
let context = null;
let profileDir = "";
let upstream = null;
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (upstream) upstream.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
}
const watchdog = setTimeout(() => {
  console.error("compression.test: still running after 90 s; giving up");
  cleanup();
  process.exit(1);
}, 90_000);
watchdog.unref();

function startWeir(extra) {
  return new Promise((ok, fail) => {
    const child = spawn(weirBin, ["--listen", "127.0.0.1:0", "--log-level", "info", ...extra], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    children.push(child);
    let log = "";
    const timer = setTimeout(() => fail(new Error(`weir printed no addr= in 10 s:\n${log}`)), 10_000);
    child.on("error", (e) => fail(new Error(`cannot start ${weirBin}: ${e.message}`)));
    child.stderr.on("data", (d) => {
      log += d;
      const m = /listening addr=(\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
}

// The upstream: echoes, and answers "frag" with one message in three compressed fragments.
function startUpstream() {
  return new Promise((ok) => {
    upstream = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      maxPayload: 64 << 20,
      perMessageDeflate: { threshold: 0 },
    });
    upstream.on("connection", (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary && data.toString() === "frag") {
          const parts = ["first part, ", "second part, ".repeat(100), "third part"];
          parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1, compress: true }));
        } else {
          ws.send(data, { binary: isBinary });
        }
      });
    });
    upstream.on("listening", () => ok(upstream.address().port));
  });
}

// Runs in the page: opens `url`, echoes each case, returns the agreed extensions or throws.
async function inPage([url, withFrag]) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const queue = [];
  let waiter = null;
  ws.onmessage = (e) => (waiter ? waiter(e.data) : queue.push(e.data));
  const next = () =>
    new Promise((ok, fail) => {
      if (queue.length) return ok(queue.shift());
      const t = setTimeout(() => fail(new Error(`${url}: no message in 20 s`)), 20_000);
      waiter = (d) => {
        clearTimeout(t);
        waiter = null;
        ok(d);
      };
    });
  await new Promise((ok, fail) => {
    ws.onopen = ok;
    ws.onerror = () => fail(new Error(`${url}: did not open`));
  });
  const json = JSON.stringify({ type: "message", channel: "builds", data: { status: "green" } });
  const bin = new Uint8Array(1 << 20).map((_, i) => (i * 7 + (i >> 10)) & 0xff);
  const cases = [json, json.repeat(40), "caf\u00e9 \u{1f600} ".repeat(1000), "x".repeat(3 << 20), bin, ""];
  for (const [i, c] of cases.entries()) {
    ws.send(c);
    const got = await next();
    const same =
      typeof c === "string"
        ? got === c
        : got instanceof ArrayBuffer && new Uint8Array(got).every((b, j) => b === c[j]) && got.byteLength === c.length;
    if (!same) throw new Error(`${url}: message ${i} came back different`);
  }
  if (withFrag) {
    ws.send("frag");
    const got = await next();
    const want = "first part, " + "second part, ".repeat(100) + "third part";
    if (got !== want) throw new Error(`${url}: the fragmented message came as ${String(got).slice(0, 40)}`);
  }
  ws.close(1000);
  return ws.extensions;
}

let failed = false;
try {
  const upPort = await startUpstream();
  profileDir = mkdtempSync(join(tmpdir(), "weir-pmd-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumBin,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    timeout: 20_000,
  });
  const page = context.pages()[0] || (await context.newPage());
  for (const [mode, want] of [
    ["shared", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
    ["dedicated", "permessage-deflate"],
  ]) {
    const addr = await startWeir([
      "--compression", mode, "--compression-min-size", "0",
      "--route", `/up=ws://127.0.0.1:${upPort}/`,
    ]);
    for (const [path, frag] of [["/echo", false], ["/up", true]]) {
      const ext = await page.evaluate(inPage, [`ws://${addr}${path}`, frag]);
      // Chromium offers `client_max_window_bits`; weir answers without limiting it.
      if (!ext.startsWith(want) || ext.includes("server_max_window_bits")) {
        throw new Error(`${mode} ${path}: extensions ${JSON.stringify(ext)}, wanted ${want}`);
      }
      console.log(`ok ${mode} ${path}: ${ext}`);
    }
  }
} catch (e) {
  console.error(`compression.test: ${e.stack || e}`);
  failed = true;
} finally {
  if (context) await context.close().catch(() => {});
  cleanup();
}
process.exit(failed ? 1 : 0);
