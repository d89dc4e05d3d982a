// Sign in, open a release page while the release runs, watch its steps advance and the
// traffic split move to green without a reload, then roll the finished release back with the
// button and see the page say so.
// Usage: node release-live.mjs BASE_URL EMAIL PASSWORD RELEASE_PAGE_PATH   (prints {"shares": [...]})
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, releasePath] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(60000);
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(releasePath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${releasePath}`);
  const loadedAt = await page.evaluate(() => performance.timeOrigin);

  // The plan's steps follow the release live.
  await page.locator('#release-steps li[data-step="monitor"][data-status="running"]').waitFor();
  check(await page.locator("#release-status").textContent() === "in_progress", "shown in progress");
  check(
    await page.locator('#release-steps li[data-step="shift"][data-status="succeeded"]').count() === 1,
    "shift shown as done",
  );
  const sharesWhileMonitoring = [
    await page.locator("#share-blue").textContent(),
    await page.locator("#share-green").textContent(),
  ];
  check(sharesWhileMonitoring[1] === "67", `green takes 67% (${sharesWhileMonitoring})`);
  check(await page.locator("#traffic-green").getAttribute("width") === "67", "the bar shows it");
  check(await page.locator('#colour-green [data-field="routed"]').textContent() === "2", "2 green routed");
  await page.locator('#colour-green [data-field="success_rate"]', { hasText: "%" }).waitFor();
  await shot(page, "20-release-monitor");

  await page.locator("#release-status", { hasText: "succeeded" }).waitFor();
  check(await page.locator("#share-green").textContent() === "100", "green takes everything");
  check(!(await page.locator("#abort-form").isVisible()), "no abort after the end");
  check(await page.evaluate(() => performance.timeOrigin) === loadedAt, "no reload happened");
  await shot(page, "21-release-done");

  // Roll it back with the button.
  await page.getByRole("button", { name: "Roll back" }).click();
  await page.waitForURL(`${base}${releasePath}`);
  await page.locator("#release-status", { hasText: "rolled_back" }).waitFor();
  await page.locator('#release-steps li[data-step="rollback"][data-status="succeeded"]').waitFor();
  check((await page.locator("#release-reason").textContent()).includes("rolled back on request"), "reason shown");
  await shot(page, "22-release-rolled-back");
  console.log(JSON.stringify({ shares: sharesWhileMonitoring }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 6000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
