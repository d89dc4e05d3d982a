// A project's settings page in Chromium: edit the repository and branches (a bad value is
// refused by field, the rest kept), generate an SSH deploy key, "add" it to the server (the
// flow writes it to sshd's authorized_keys, as a person pastes it into GitLab), test the
// connection, add / refuse / delete a secret, rotate the webhook secret, and delete the
// project after a confirmation naming it. The page must not scroll sideways on a phone.
// An HTTPS token is tried first, against a git server that wants it.
// Usage: node project-settings.mjs BASE EMAIL PASSWORD SETTINGS_PATH SSH_URL AUTHORIZED_KEYS
//        HTTP_URL TOKEN
import { writeFileSync } from "node:fs";
import { launch, check, shot } from "./lib.mjs";

const [base, email, password, settingsPath, sshUrl, authorizedKeys, httpUrl, token] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
const notice = () => page.locator("p.notice").first();
try {
  await page.goto(`${base}/login?next=${encodeURIComponent(settingsPath)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}${settingsPath}`);
  check((await page.title()).startsWith("Settings · Web · Acme Corp"), `title names the org: ${await page.title()}`);

  const general = page.locator("#general-form");
  // A private repository over HTTPS: the token is saved, never shown, and the test connects.
  await general.getByLabel("Repository URL").fill(httpUrl);
  await general.getByRole("button", { name: "Save settings" }).click();
  await notice().filter({ hasText: "Settings saved." }).waitFor();
  await page.getByRole("button", { name: "Test connection" }).click();
  await notice().filter({ hasText: "Connection failed" }).waitFor();
  const tokenForm = page.locator("#token-form");
  await tokenForm.getByLabel("User name").fill("ci-bot");
  await tokenForm.getByLabel("Token").fill(token);
  await tokenForm.getByRole("button", { name: "Save token" }).click();
  await notice().filter({ hasText: "The HTTPS token was saved" }).waitFor();
  check((await page.locator("#credential-state").textContent()).includes("ci-bot"), "the token's user is shown");
  check(!(await page.content()).includes(token), "the token is never shown");
  await page.getByRole("button", { name: "Test connection" }).click();
  await notice().filter({ hasText: "Connected: main is at" }).waitFor();

  // A bad Jenkinsfile path is refused next to its field; the other fields keep their values.
  await general.getByLabel("Repository URL").fill(sshUrl);
  await general.getByLabel("Branches that build on a push").fill("main, release/*");
  await general.getByLabel("Jenkinsfile path").fill("../Jenkinsfile");
  await general.getByRole("button", { name: "Save settings" }).click();
  await page.locator("#e-pipeline_path").waitFor();
  check(await general.getByLabel("Repository URL").inputValue() === sshUrl, "the URL was kept");
  await general.getByLabel("Jenkinsfile path").fill("Jenkinsfile");
  await general.getByRole("button", { name: "Save settings" }).click();
  await notice().filter({ hasText: "Settings saved." }).waitFor();
  check(await general.getByLabel("Branches that build on a push").inputValue() === "main, release/*", "branches saved");

  // A deploy key: generated, shown, added to the server, and the connection tested.
  await page.getByRole("button", { name: "Generate a deploy key" }).click();
  await notice().filter({ hasText: "A new SSH deploy key was generated" }).waitFor();
  const publicKey = (await page.locator("#deploy-key").textContent()).trim();
  check(publicKey.startsWith("ssh-ed25519 "), `a public key is shown: ${publicKey}`);
  writeFileSync(authorizedKeys, `${publicKey}\n`);
  await page.getByRole("button", { name: "Test connection" }).click();
  await notice().filter({ hasText: "Connected: main is at" }).waitFor();
  const connected = await notice().textContent();
  check(connected.includes("host key is now pinned"), `the host key was pinned: ${connected}`);
  await page.locator("#host-keys").waitFor();
  await shot(page, "20-settings-connected");

  // Phones: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `the page scrolls sideways by ${overflow}px at 375px`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // Secrets: added, a bad name refused by field, deleted after confirming.
  const secrets = page.locator("#secret-form");
  await secrets.getByLabel("Name").fill("deploy-token");
  await secrets.getByLabel("Value").fill("s3cret-from-the-browser");
  await secrets.getByRole("button", { name: "Save secret" }).click();
  await notice().filter({ hasText: "Secret deploy-token added." }).waitFor();
  await page.locator("#secret-table code", { hasText: "deploy-token" }).waitFor();
  check(!(await page.content()).includes("s3cret-from-the-browser"), "the value is never shown");
  await secrets.getByLabel("Name").fill("bad name");
  await secrets.getByLabel("Value").fill("x");
  await secrets.getByRole("button", { name: "Save secret" }).click();
  await page.locator("#e-secret-name").waitFor();
  check(await secrets.getByLabel("Name").inputValue() === "bad name", "the bad name is kept to fix");
  page.once("dialog", (dialog) => dialog.accept());
  await page.locator("#secret-table tr", { hasText: "deploy-token" }).getByRole("button", { name: "Delete" }).click();
  await notice().filter({ hasText: "Secret deploy-token deleted." }).waitFor();

  // The webhook secret, rotated after confirming (dismissing the question changes nothing).
  const before = (await page.locator("#webhook-secret").textContent()).trim();
  page.once("dialog", (dialog) => dialog.dismiss());
  await page.getByRole("button", { name: "Rotate webhook secret" }).click();
  check((await page.locator("#webhook-secret").textContent()).trim() === before, "dismissed: not rotated");
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: "Rotate webhook secret" }).click();
  await notice().filter({ hasText: "The webhook secret was rotated" }).waitFor();
  const after = (await page.locator("#webhook-secret").textContent()).trim();
  check(after !== before && after.length >= 32, "a new webhook secret is shown");

  // Deleting needs the project's slug typed.
  const del = page.locator("#delete-form");
  await del.getByLabel("Type web to confirm").fill("wbe");
  await del.getByRole("button", { name: "Delete project web" }).click();
  await notice().filter({ hasText: "Not deleted: type the project's slug, web, to confirm." }).waitFor();
  await page.locator("#delete-form").getByLabel("Type web to confirm").fill("web");
  await page.locator("#delete-form").getByRole("button", { name: "Delete project web" }).click();
  await page.waitForURL(`${base}/orgs/acme/projects`);
  await notice().filter({ hasText: "Project web was deleted" }).waitFor();
  await page.reload();
  check(await page.locator("p.notice").count() === 0, "the notice is shown once");
  console.log(JSON.stringify({ publicKey, before, after, connected }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 6000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
