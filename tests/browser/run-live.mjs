// Sign in, open a running run's page, watch its log grow live (with ANSI colours), approve
// its gate with the button, and see it succeed.
// Usage: node run-live.mjs BASE_URL EMAIL PASSWORD RUN_PAGE_PATH   (prints {"lines": n, ...})
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, runPath] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(runPath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${runPath}`);

  // The log grows while the page is open: no reload, lines arrive as the build prints them.
  const log = page.locator("#log");
  await log.locator(".log-line", { hasText: /tick-\d+/ }).first().waitFor();
  check(await page.locator("#run-status").textContent() === "running", "the run is still going");
  const early = Number(await log.getAttribute("data-lines"));
  await page.waitForFunction(
    (n) => Number(document.getElementById("log").dataset.lines) > n + 2,
    early,
  );
  const later = Number(await log.getAttribute("data-lines"));
  check(later > early, `the log grew live (${early} then ${later} lines)`);
  // Colours are rendered, not shown as escape codes.
  await log.locator(".log-line", { hasText: /^\d\d:\d\d:\d\dtick-3$/ }).waitFor();
  const green = log.locator("span.ansi-fg-2", { hasText: /^tick-3$/ });
  check(await green.count() === 1, "ANSI green rendered as a coloured span");
  check(!(await log.textContent()).includes("\u001b["), "no raw escape codes in the log");
  // Lines are grouped by stage.
  await log.locator("details.log-section summary", { hasText: "Build" }).first().waitFor();
  await shot(page, "10-run-live");

  // The gate appears without a reload; approving it lets the run finish.
  const approve = page.getByRole("button", { name: "Ship" });
  await approve.waitFor();
  check(await page.locator("#run-status").textContent() === "waiting", "status shows waiting");
  check((await page.locator("#gate-message").textContent()).includes("Ship it?"), "gate message shown");
  // Parallel branches are drawn inside their stage.
  await page.locator('.stage-node[data-stage="Checks"] .stage-branches .stage-node[data-stage="Unit"]').waitFor();
  await shot(page, "11-run-gate");
  await approve.click();
  await page.waitForURL(`${base}${runPath}`);
  await page.locator("#run-status", { hasText: "succeeded" }).waitFor();
  await page.locator("#log .log-line", { hasText: "Finished: SUCCESS" }).waitFor();
  check((await log.textContent()).includes("shipped"), "the steps after the gate ran");
  await shot(page, "12-run-done");
  console.log(JSON.stringify({ lines: Number(await log.getAttribute("data-lines")), early, later }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 6000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
