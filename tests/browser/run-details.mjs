// A run's page while it runs: parallel branches' interleaved output lands in one section per
// branch, `post` output under "Post", the stage graph shows durations and a click scrolls to
// the stage's log, and the artifacts, test results (failing tests with their messages, next
// to a pass/fail trend), duration and reason appear without a reload.
// The run waits for GO_FILE, written once the page is open.
// Usage: node run-details.mjs BASE EMAIL PASSWORD RUN_PAGE_PATH GO_FILE
import { writeFileSync } from "node:fs";
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, runPath, goFile] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(runPath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${runPath}`);
  check(await page.locator("#no-artifacts").count() === 1, "no artifacts when the page opened");
  writeFileSync(goFile, "go\n");
  const loads = [];
  page.on("load", () => loads.push(page.url()));

  // Everything below arrives while the page stays open.
  await page.locator("#run-status", { hasText: "failed" }).waitFor();
  await page.locator("#artifact-table a", { hasText: "dist/app.txt" }).waitFor();
  await page.locator("#test-summary", { hasText: "1 failed" }).waitFor();
  const failure = page.locator(".failures li").first();
  check((await failure.locator(".test-name").textContent()).includes("checkout_total"), "the failing test is named");
  check((await failure.locator(".test-message").textContent()).includes("expected 42 but was 41"), "with its message");
  await page.locator("#run-reason:not([hidden])", { hasText: "deliberate failure" }).waitFor();
  check(/\d+s/.test(await page.locator("#run-duration").textContent()), "the duration is shown");
  await page.locator("#log[data-done='true']").waitFor();
  check(loads.length === 0, `no reload: ${loads}`);

  // One section per parallel branch, in spite of the interleaving; post output under Post.
  const summaries = await page.locator("details.log-section > summary").allTextContents();
  for (const name of ["Left", "Right", "Post"]) {
    check(summaries.filter((s) => s === name).length === 1, `one ${name} section: ${summaries}`);
  }
  const left = await page.locator('details.log-section[data-stage="Left"]').textContent();
  check(left.includes("left-1") && left.includes("left-3") && !left.includes("right-"), "Left holds its own lines");
  const post = await page.locator('details.log-section[data-stage="Post"]').textContent();
  check(post.includes("POST-ALWAYS"), "post output under Post");

  // The graph: durations, and a click shows the stage's log.
  const node = page.locator('.stage-node[data-stage="Slow"]');
  check(/\d+s/.test(await node.locator(".stage-duration").textContent()), "stage duration");
  await page.locator("#follow").check();
  await node.click();
  check(!(await page.locator("#follow").isChecked()), "following stops");
  const inView = await page.locator('details.log-section[data-stage="Slow"]').evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.top >= -2 && r.top < window.innerHeight;
  });
  check(inView, "the Slow section is scrolled into view");

  // The trend (drawn when the page loads): the earlier run and this one, in bold.
  await page.reload();
  check(await page.locator("#test-trend .trend-bar").count() === 2, "two runs in the trend");
  check(await page.locator("#test-trend .trend-bar.current").getAttribute("data-run") === "2", "this run marked");
  await shot(page, "60-run-details");
  console.log(JSON.stringify({ summaries }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 6000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
