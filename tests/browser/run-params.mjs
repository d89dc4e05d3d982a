// "Run with parameters": the branch and tag picker lists the repository's refs, the form is
// built from the declared parameters (string, choice, boolean, text, password), and the run
// page says who started it.
// Usage: node run-params.mjs BASE EMAIL PASSWORD PROJECT_PATH   (prints {"run": path, ...})
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, projectPath] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(projectPath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${projectPath}`);
  await page.getByRole("link", { name: "Run with parameters…" }).click();
  await page.waitForURL(`${base}${projectPath}/run`);

  const picker = page.getByLabel("Branch or tag");
  const options = await picker.locator("option").allTextContents();
  for (const want of ["main", "feature/x", "v1.0"]) {
    check(options.includes(want), `${want} offered: ${options}`);
  }
  check(await picker.inputValue() === "main", "the default branch is preselected");
  check(await page.getByLabel("TARGET").inputValue() === "staging", "a string shows its default");
  check((await page.locator(".params").textContent()).includes("Where to deploy"), "descriptions shown");
  check(await page.getByLabel("DRY_RUN").isChecked(), "a boolean shows its default");
  await picker.selectOption("v1.0");
  await page.getByLabel("TARGET").fill("production");
  await page.getByLabel("REGION").selectOption("us");
  await page.getByLabel("DRY_RUN").uncheck();
  await page.getByLabel("NOTES").fill("first line\nsecond line");
  await page.getByLabel("TOKEN").fill("typed-secret-4711");
  await shot(page, "40-run-form");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.waitForURL(/\/runs\/\d+$/);
  const started = (await page.locator("#started-by").textContent()).trim();
  check(started === "Started by runner", `the run says who started it: ${started}`);
  console.log(JSON.stringify({ run: new URL(page.url()).pathname, started }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 4000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
