// The project page's stage view in Chromium: recent runs × stages with durations and
// colours, a run waiting for approval stands out, and a run started elsewhere appears and
// advances without a reload; the chart has its axes.
// Usage: node project-live.mjs BASE EMAIL PASSWORD PROJECT_PATH API_RUNS_PATH
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, projectPath, apiRuns] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(projectPath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${projectPath}`);

  const view = page.locator("#stage-view");
  const columns = await view.locator("thead th").allTextContents();
  check(JSON.stringify(columns) === JSON.stringify(["Run", "Build", "Test", "Approve"]), `columns: ${columns}`);
  const first = view.locator('tr[data-run="2"]');
  check(await first.getAttribute("class") === "run-waiting", "run 2 waits");
  check((await first.locator(".badge").textContent()).includes("waiting for approval"), "its badge says so");
  check((await page.locator("#waiting-alert").textContent()).includes("1 run waiting for approval"), "the alert counts it");
  const build = first.locator("td.cell").first();
  check((await build.getAttribute("class")).includes("status-succeeded"), "Build succeeded, coloured");
  check(/\d+s/.test(await build.textContent()), `Build shows its duration: ${await build.textContent()}`);
  // The chart (run 1 ended, cancelled at its gate) has its axes.
  check(await page.locator(".chart .axis").count() === 2, "two axes");
  check((await page.locator(".chart .axis-label").allTextContents()).includes("0s"), "the y axis starts at 0s");
  await shot(page, "50-stage-view");

  // A run started through the API appears in the open page and reaches its gate, no reload.
  const loads = [];
  page.on("load", () => loads.push(page.url()));
  await page.evaluate(async (url) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const res = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: "{}" });
    if (res.status !== 201) throw new Error(`run not created: ${res.status}`);
  }, apiRuns);
  await page.locator('#stage-view tr[data-run="3"]').waitFor();
  await page.locator('#stage-view tr[data-run="3"].run-waiting').waitFor();
  await page.locator("#waiting-alert", { hasText: "2 runs waiting for approval" }).waitFor();
  check(loads.length === 0, `the page was not reloaded: ${loads}`);
  await shot(page, "51-stage-view-live");
  console.log(JSON.stringify({ columns }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 5000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
