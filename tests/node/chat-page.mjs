// Drives the server's chat page in headless Chromium: loads it, sets the temperature, sends a message and waits for the
// streamed reply, then starts a long reply and stops it. Usage: node chat-page.mjs BASE_URL CHROMIUM SCREENSHOT.png
// Prints one JSON object of what it saw; exits 1 on a failed check.
import puppeteer from "puppeteer-core";

const [baseURL, executablePath, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const report = {};
function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
}
try {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", e => pageErrors.push(String(e)));
  await page.setViewport({ width: 1000, height: 700 });
  await page.goto(baseURL, { waitUntil: "load" });
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("context"), { timeout: 15_000 });
  report.model = await page.$eval("#model", e => e.textContent);

  // Temperature 0 through the slider's input event, as a user dragging it.
  await page.$eval("#temperature", e => { e.value = "0"; e.dispatchEvent(new Event("input")); });
  report.temperature = await page.$eval("#temperature-value", e => e.textContent);
  await page.$eval("#max-tokens", e => { e.value = "24"; });
  await page.type("#input", "Tell me a story about a dog.");
  await page.click("#send");
  await page.waitForSelector(".msg.assistant .stats", { timeout: 30_000 });
  report.reply = await page.$eval(".msg.assistant", e => e.firstChild.textContent);
  report.replyStats = await page.$eval(".msg.assistant .stats", e => e.textContent);
  check(report.reply.length > 0, "the reply streamed into the page");
  check(/tokens\/s/.test(report.replyStats), "the reply shows its speed");
  await page.screenshot({ path: screenshot });

  // A long reply, stopped as soon as it has begun.
  await page.$eval("#max-tokens", e => { e.value = "800"; });
  await page.type("#input", "Another one, a long one.");
  await page.click("#send");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant")[1]?.firstChild?.textContent.length > 0, { timeout: 30_000 });
  check(await page.$eval("#stop", e => !e.disabled), "Stop is enabled while a reply streams");
  await page.click("#stop");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant .stats").length === 2, { timeout: 15_000 });
  report.stoppedStats = await page.$$eval(".msg.assistant .stats", e => e[1].textContent);
  check(report.stoppedStats.startsWith("stopped"), "the stopped reply says so: " + report.stoppedStats);
  check(await page.$eval("#send", e => !e.disabled), "Send is enabled again");
  check(await page.$$eval(".msg.error", e => e.length) === 0, "no error shown");
  check(pageErrors.length === 0, "no script errors: " + pageErrors.join("; "));
  report.messages = await page.$$eval(".msg", e => e.length);
} catch (e) {
  // Say what the page showed, not only which wait timed out.
  const page = (await browser.pages())[1];
  const shown = page ? await page.$$eval(".msg", m => m.map(x => x.className + ": " + x.textContent)).catch(() => []) : [];
  throw new Error(e.message + "\npage: " + JSON.stringify(shown));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
