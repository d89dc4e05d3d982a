// The lint page: paste a Jenkinsfile with a typo, see the diagnostic with its line and a
// caret under the column; fix it and see it valid, the text kept in the box.
// Usage: node lint-page.mjs BASE EMAIL PASSWORD
import { launch, check, shot } from "./lib.mjs";

const [base, email, password] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
const broken = `pipeline {
    agent any
    stages {
        stage('Build') {
            steps { shh 'make' }
        }
    }
}`;
try {
  await page.goto(`${base}/login?next=/lint`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/lint`);
  await page.getByLabel("Jenkinsfile").fill(broken);
  await page.getByRole("button", { name: "Check" }).click();
  await page.locator("#lint-result h2", { hasText: "1 error" }).waitFor();
  const item = page.locator("li.diagnostic.error").first();
  const where = (await item.locator("code").first().textContent()).trim();
  check(where === "Jenkinsfile:5:21", `the diagnostic names line and column: ${where}`);
  check((await item.textContent()).includes("unknown step `shh`"), "the message");
  const excerpt = await item.locator("pre.excerpt").textContent();
  const [sourceLine, caretLine] = excerpt.split("\n");
  check(sourceLine.includes("steps { shh 'make' }"), `the source line is shown: ${sourceLine}`);
  // The caret sits under the column at fault.
  check(caretLine.indexOf("^") === sourceLine.indexOf("shh"), `caret under shh:\n${excerpt}`);
  check(await page.getByLabel("Jenkinsfile").inputValue() === broken, "the text is kept to fix");
  await shot(page, "30-lint-error");
  await page.getByLabel("Jenkinsfile").fill(broken.replace("shh", "sh"));
  await page.getByRole("button", { name: "Check" }).click();
  await page.locator("#lint-result h2", { hasText: "Valid" }).waitFor();
  console.log(JSON.stringify({ where, excerpt }));
} catch (error) {
  await shot(page, "failure");
  console.error(`${error.message}\nat ${page.url()}\n${(await page.locator("main").innerHTML()).slice(0, 4000)}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
