// Sign up -> create org -> create project -> create token, all through the pages.
// Usage: node signup-to-token.mjs BASE_URL   (prints {"token": "..."} on success)
import { launch, check, shot } from "./lib.mjs";

const base = process.argv[2];
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(15000);
try {
  await page.goto(`${base}/`);
  await shot(page, "01-landing");
  await page.getByRole("link", { name: "Sign up" }).first().click();

  // A bad email is refused next to its field, the rest is kept.
  await page.getByLabel("Your name").fill("Ada Lovelace");
  await page.getByLabel("Email").fill("ada-at-example");
  await page.getByLabel("Password").fill("analytical engine");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.locator("#e-email").waitFor();
  check(await page.getByLabel("Your name").inputValue() === "Ada Lovelace", "name kept after an error");
  await shot(page, "02-signup-error");
  await page.getByLabel("Email").fill("ada@example.com");
  await page.getByLabel("Password").fill("analytical engine");
  await page.getByRole("button", { name: "Sign up" }).click();

  await page.waitForURL(`${base}/orgs`);
  await page.getByLabel("Name").fill("Analytical");
  await page.getByLabel("Slug").fill("analytical");
  await page.getByRole("button", { name: "Create organisation" }).click();
  await page.waitForURL(`${base}/orgs/analytical/projects`);
  // After the redirect, a notice says what happened, once.
  check((await page.locator("p.notice").textContent()).includes("Analytical was created"), "a notice after creating");

  await page.getByLabel("Name").fill("Engine");
  await page.getByLabel("Slug").fill("engine");
  await page.getByLabel("Repository URL").fill("not a url");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.locator("#e-repo_url").waitFor();
  await shot(page, "03-project-error");
  await page.getByLabel("Repository URL").fill("https://git.example.com/analytical/engine.git");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.waitForURL(`${base}/orgs/analytical/projects/engine`);
  check((await page.locator("p.notice").textContent()).includes("Engine was created"), "a notice after creating the project");
  check((await page.locator("#gitlab-url").textContent()).endsWith("/hooks/gitlab/analytical/engine"), "webhook URL shown");
  await page.reload();
  check(await page.locator("p.notice").count() === 0, "the notice is gone after a reload");
  await shot(page, "04-project");

  await page.getByRole("link", { name: "Tokens" }).click();
  await page.getByLabel("Name").fill("ci script");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = (await page.locator("#new-token").textContent()).trim();
  check(token.startsWith("slc_"), "token shown once");
  await shot(page, "05-token");
  console.log(JSON.stringify({ token }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.content()).slice(0, 2000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
