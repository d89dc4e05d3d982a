// After signing in, the dashboard: runs waiting for you (with the gate's question), your orgs'
// projects with their last run, and recent activity; one click approves from there.
// Usage: node dashboard.mjs BASE EMAIL PASSWORD
import { launch, check, shot } from "./lib.mjs";

const [base, email, password] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  check((await page.locator("h1").textContent()).trim() === "Dashboard", "the dashboard, not the landing page");
  const waiting = page.locator("#waiting-for-you li");
  check(await waiting.count() === 1, "one run waits");
  check((await waiting.textContent()).includes("Deploy to staging?"), "with its question");
  const projects = await page.locator(".project-health tbody tr").allTextContents();
  check(projects.some((t) => t.includes("api") && t.includes("succeeded")), `api's last run: ${projects}`);
  check(projects.some((t) => t.includes("web") && t.includes("waiting")), `web's last run: ${projects}`);
  check(!(await page.content()).includes("Secret Org"), "another org's work is not shown");
  const activity = await page.locator(".activity li").count();
  check(activity === 2, `recent activity lists both runs: ${activity}`);
  await shot(page, "70-dashboard");
  await waiting.locator("a").first().click();
  await page.waitForURL(/\/runs\/1$/);
  await page.getByRole("button", { name: "Proceed" }).click();
  await page.locator("#run-status", { hasText: "succeeded" }).waitFor();
  await page.goto(`${base}/`);
  check(await page.locator("#waiting-for-you li").count() === 0, "nothing waits any more");
  console.log(JSON.stringify({ projects, activity }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 5000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
