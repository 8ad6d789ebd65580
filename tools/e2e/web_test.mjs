// The chat page in headless Chromium (Debian's chromium driven by playwright-core): it loads,
// sends a message, streams an answer, and Stop ends a generation (the server frees the slot).
// A screenshot goes to $ORIGAMI_E2E_OUT/web_chat.png.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, metrics, check, eq, test, summary, sleep, SKIP } from "./lib.mjs";

const chromium_path = process.env.ORIGAMI_CHROMIUM || "/usr/bin/chromium";
if (!existsSync(chromium_path)) {
  console.log(`SKIP: ${chromium_path} not found (apt-get install chromium)`);
  process.exit(SKIP);
}
const { chromium } = await import("playwright-core");
const outDir = process.env.ORIGAMI_E2E_OUT || ".";
mkdirSync(outDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "origami-chromium-"));

// A long sequence limit, so the Stop test's generation cannot end by itself before the click.
const srv = await startServer(["--parallel", "2", "--max-seq-len", "16384", "-c", "32768"]);
// A fresh profile directory (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: chromium_path,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(srv.url)) external.push(r.url()); });

  await test("page loads", async () => {
    const r = await page.goto(srv.url + "/");
    eq(r.status(), 200, "status");
    eq(await page.title(), "origami chat", "title");
    await page.waitForFunction(() => document.getElementById("model").textContent.length > 0, null, { timeout: 10000 });
  });

  await test("sends a message and streams the answer", async () => {
    await page.fill("#maxtok", "40");
    await page.fill("#temp", "0");
    await page.fill("#input", "Tell me a story about a cat.");
    await page.click("#send");
    await page.waitForSelector(".msg.user");
    await page.waitForFunction(() => {
      const m = document.querySelectorAll(".msg.assistant");
      return m.length === 1 && m[0].dataset.state === "done";
    }, null, { timeout: 30000 });
    const answer = await page.textContent(".msg.assistant");
    check(answer.length > 0, "answer text");
    check(/tokens\/s/.test(await page.textContent("#stats")), "tokens/s shown");
    await page.screenshot({ path: join(outDir, "web_chat.png"), fullPage: true });
  });

  await test("Stop ends a long generation and frees the slot", async () => {
    // The page's request gains ignore_eos (an extension), so the story cannot end on its own
    // between the checks and the click.
    await page.route("**/v1/chat/completions", async (route) => {
      const body = JSON.parse(route.request().postData());
      await route.continue({ postData: JSON.stringify({ ...body, ignore_eos: true }) });
    });
    // A page slowed down 8x (CPU throttling) reads the stream slower than the server writes it, as
    // on a busy machine: the page must still yield to the click on Stop.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 8 });
    await page.fill("#maxtok", "100000");
    await page.fill("#temp", "1");
    await page.fill("#input", "Tell me a very long story.");
    await page.click("#send");
    await page.waitForFunction(() => {
      const m = document.querySelectorAll(".msg.assistant");
      return m.length === 2 && m[1].textContent.length > 0;
    }, null, { timeout: 30000 });
    check(!(await page.isDisabled("#stop")), "Stop enabled while streaming");
    await page.click("#stop");
    await page.waitForFunction(() => document.querySelectorAll(".msg.assistant")[1].dataset.state === "stopped", null, { timeout: 10000 });
    check(await page.isDisabled("#stop"), "Stop disabled after stopping");
    let m = {};
    for (let i = 0; i < 50; i++) {
      m = await metrics(srv.url);
      if (m.origami_live_sequences === 0) break;
      await sleep(100);
    }
    eq(m.origami_live_sequences, 0, "no live sequence after Stop");
    eq(m.origami_kv_blocks_in_use, 0, "no KV blocks held after Stop");
    await page.screenshot({ path: join(outDir, "web_chat_stopped.png"), fullPage: true });
  });

  eq(pageErrors, [], "no page errors");
  eq(external, [], "no requests outside the server (no CDN)");
} finally {
  await browser.close();
  await srv.stop();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(summary());
