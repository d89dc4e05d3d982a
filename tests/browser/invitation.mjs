// An invitation link opened signed out: it names the org and the role, offers to sign up,
// comes back after signing up, and accepting joins the org with a notice naming it.
// Usage: node invitation.mjs BASE INVITATION_PATH EMAIL
import { launch, check, shot } from "./lib.mjs";

const [base, invitationPath, email] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
try {
  await page.goto(`${base}${invitationPath}`);
  const summary = (await page.locator("#invitation-summary").textContent()).replace(/\s+/g, " ");
  check(summary.includes("join Acme Corp on Sluice as developer"), `org and role named: ${summary}`);
  check(summary.includes(email), "the address it is for");
  await shot(page, "80-invitation-signed-out");
  await page.getByRole("link", { name: "Sign up to accept" }).click();
  await page.getByLabel("Your name").fill("Grace");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("compiler pioneer 1952");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(`${base}${invitationPath}`);
  const button = page.getByRole("button", { name: "Join Acme Corp as developer" });
  await button.click();
  await page.waitForURL(`${base}/orgs/acme/projects`);
  const notice = (await page.locator("p.notice").textContent()).trim();
  check(notice === "You joined Acme Corp as developer.", `notice: ${notice}`);
  await shot(page, "81-invitation-accepted");
  console.log(JSON.stringify({ summary, notice }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 4000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
