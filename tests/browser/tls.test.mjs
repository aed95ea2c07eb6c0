// Headless Chromium over TLS: weir (built with --features tls) on --listen-tls with a test CA
// made here with openssl; Chromium trusts that CA by its key (--ignore-certificate-errors-spki-list,
// the one way to hand a CA to headless Chromium without a certificate database). The console
// page loads over https://, and a page WebSocket to wss://.../echo echoes text, binary and 1 MiB
// and closes with a reason. (A browser cannot choose how a message is fragmented: fragments are
// covered by tests/tls_interop.rs.)
//
//   WEIR_BIN=target/tls/release/weir node tests/browser/tls.test.mjs   (after `npm ci` here)
//
// CHROMIUM: the browser binary (default /usr/bin/chromium).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const weirBin = resolve(root, process.env.WEIR_BIN || "target/tls/release/weir");
const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";
const watchdog = setTimeout(() => {
  console.error("tls.test: still running after 50 s; giving up");
  cleanup();
  process.exit(1);
}, 50_000);
watchdog.unref();

const dir = mkdtempSync(join(tmpdir(), "weir-tls-chromium-"));
let weir = null;
let context = null;

function cleanup() {
  if (weir && weir.exitCode === null) weir.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}

after(async () => {
  if (context) await context.close().catch(() => {});
  cleanup();
});

function openssl(args, input) {
  return execFileSync("openssl", args, { cwd: dir, input, stdio: ["pipe", "pipe", "ignore"] });
}

/** A CA, a certificate for localhost it signed, and the base64 SHA-256 of the CA's key. */
function makeCerts() {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=weir browser test CA",
    "-keyout", "ca.key", "-out", "ca.pem"]);
  openssl(["req", ...ec, "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "req.csr"]);
  writeFileSync(join(dir, "ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(["x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
    "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "leaf.pem"]);
  // The chain as Let's Encrypt's fullchain.pem has it: leaf first, then its issuer (Chromium
  // matches the key hash against the certificates the server sends).
  writeFileSync(join(dir, "cert.pem"),
    Buffer.concat([readFileSync(join(dir, "leaf.pem")), readFileSync(join(dir, "ca.pem"))]));
  const pub = openssl(["x509", "-in", "ca.pem", "-pubkey", "-noout"]);
  const der = openssl(["pkey", "-pubin", "-outform", "der"], pub);
  return openssl(["dgst", "-sha256", "-binary"], der).toString("base64");
}

/** Starts weir with a TLS listener; resolves with its port, from `listening addr=... tls=true`. */
function startWeir() {
  return new Promise((resolvePromise, reject) => {
    weir = spawn(weirBin, ["--listen-tls", "127.0.0.1:0", "--log-level", "info",
      "--tls-cert", join(dir, "cert.pem"), "--tls-key", join(dir, "key.pem")],
    { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    const timer = setTimeout(() => reject(new Error(`no TLS listener in 10 s:\n${log}`)), 10_000);
    weir.on("error", (e) => reject(new Error(`cannot start ${weirBin}: ${e.message} ` +
      "(cargo build --release --features tls --target-dir target/tls)")));
    weir.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening addr=127\.0\.0\.1:(\d+) tls=true/);
      if (m) {
        clearTimeout(timer);
        resolvePromise(Number(m[1]));
      }
    });
  });
}

test("the console over https and a page's wss:// echo in headless Chromium", async () => {
  const spki = makeCerts();
  const port = await startWeir();
  const profile = join(dir, "profile");
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumBin,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--ignore-certificate-errors-spki-list=${spki}`],
    timeout: 20_000,
  });
  context.setDefaultTimeout(10_000);
  const page = context.pages()[0] || (await context.newPage());
  const resp = await page.goto(`https://localhost:${port}/`, { waitUntil: "load" });
  assert.equal(resp.status(), 200);
  assert.equal(await resp.headerValue("content-type"), "text/html; charset=utf-8");
  const security = await resp.securityDetails();
  assert.ok(security && security.protocol.startsWith("TLS"), JSON.stringify(security));
  const result = await page.evaluate(async (url) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const next = () => new Promise((ok, fail) => {
      ws.onmessage = (e) => ok(e.data);
      ws.onerror = () => fail(new Error("websocket error"));
    });
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("no open")); });
    const out = {};
    ws.send("héllo over tls");
    out.text = await next();
    ws.send(new Uint8Array([0, 1, 2, 255]));
    out.binary = Array.from(new Uint8Array(await next()));
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
    ws.send(big);
    const back = new Uint8Array(await next());
    out.big = back.length === big.length && back.every((b, i) => b === big[i]);
    const closed = new Promise((ok) => { ws.onclose = (e) => ok([e.code, e.reason, e.wasClean]); });
    ws.close(4000, "browser bye");
    out.close = await closed;
    return out;
  }, `wss://localhost:${port}/echo`);
  assert.equal(result.text, "héllo over tls");
  assert.deepEqual(result.binary, [0, 1, 2, 255]);
  assert.equal(result.big, true);
  assert.deepEqual(result.close, [4000, "browser bye", true]);
});
