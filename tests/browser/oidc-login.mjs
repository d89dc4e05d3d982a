// Sign in with an OpenID provider: Sluice's sign-in page -> the provider's login form -> back
// to Sluice, signed in. Usage: node oidc-login.mjs SLUICE_URL ISSUER
import { launch, check, shot } from "./lib.mjs";

const [base, issuer] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(15000);
try {
  await page.goto(`${base}/login`);
  await page.getByRole("link", { name: "Corp SSO" }).click();
  await page.waitForURL((url) => url.href.startsWith(issuer));
  await shot(page, "oidc-01-provider");
  await page.locator('input[name="login"]').fill("alice");
  await page.locator('input[name="password"]').fill("anything");
  await page.locator('button[type="submit"]').first().click();
  await page.waitForURL(`${base}/orgs`);
  const who = (await page.locator(".nav-links li.muted").textContent()).trim();
  check(who === "Alice Example", `signed in as ${who}`);
  await shot(page, "oidc-02-signed-in");
  console.log(JSON.stringify({ signed_in_as: who }));
} catch (error) {
  await shot(page, "oidc-failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.content()).slice(0, 2000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
