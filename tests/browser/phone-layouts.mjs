// Every page of a signed-in person at phone widths: none may scroll sideways.
// Usage: node phone-layouts.mjs BASE EMAIL PASSWORD PATH...   (prints {"overflows": [...]})
import { launch, shot } from "./lib.mjs";

const [base, email, password, ...paths] = process.argv.slice(2);
const context = await launch();
const page = await context.newPage();
page.setDefaultTimeout(30000);
const overflows = [];
try {
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/login"));
  for (const width of [360, 390, 414]) {
    await page.setViewportSize({ width, height: 800 });
    for (const path of paths) {
      const res = await page.goto(`${base}${path}`);
      if (!res.ok()) throw new Error(`${path} answered ${res.status()}`);
      const wide = await page.evaluate(() => {
        const root = document.documentElement;
        const over = root.scrollWidth - root.clientWidth;
        if (over <= 0) return null;
        // The widest elements, to say what to fix.
        const culprits = [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1)
          .slice(0, 4)
          .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + String(e.className).split(" ").join(".") : ""}`);
        return { over, culprits };
      });
      if (wide) {
        overflows.push({ width, path, ...wide });
        await shot(page, `phone-${width}-${path.replaceAll("/", "_")}`);
      }
    }
  }
  console.log(JSON.stringify({ overflows, checked: paths.length * 3 }));
} catch (error) {
  console.error(`${error.message}\nat ${page.url()}`);
  process.exitCode = 1;
} finally {
  await context.close();
}
