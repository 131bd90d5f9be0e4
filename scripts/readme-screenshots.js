// Takes the README's screenshots of both dashboards during a run. Start a run first, then:
//   NODE=~/.nuget/packages/microsoft.playwright/1.64.1/.playwright/node/linux-x64/node
//   $NODE scripts/readme-screenshots.js "<Aspire login URL printed by the app host>" <run id>
// Uses the Playwright driver that the Microsoft.Playwright NuGet package ships and Debian's /usr/bin/chromium.
const { chromium } = require(`${process.env.HOME}/.nuget/packages/microsoft.playwright/1.64.1/.playwright/package`);

(async () => {
  const [login, runId, dashboard = "http://localhost:5180", out = "docs/images"] = process.argv.slice(2);
  if (!login || !runId) throw new Error("usage: readme-screenshots.js <aspire-login-url> <run-id> [dashboard-url] [out-folder]");
  const aspire = new URL(login).origin;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const shot = async (name, settle = 4000) => { await page.waitForTimeout(settle); await page.screenshot({ path: `${out}/${name}.png` }); console.log(`${out}/${name}.png`); };

  await page.goto(login);
  await page.waitForTimeout(3000);
  // The http profile runs without a trusted dev certificate; hide Aspire's banner about it.
  const dismiss = async () => { for (const b of await page.locator(".dashboard-message-bar-dismiss").all()) await b.click({ timeout: 2000 }).catch(() => {}); };
  await page.goto(`${aspire}/`);
  await page.waitForTimeout(3000);
  await dismiss();
  await shot("aspire-resources", 1500);
  // Tall enough that the tree of meters shows the Trainer meter's instruments below the runtime's.
  await page.setViewportSize({ width: 1440, height: 1500 });
  await page.goto(`${aspire}/metrics/resource/trainer-0?meter=Trainer&instrument=trainer.throughput&duration=5`);
  await page.waitForTimeout(3000);
  await dismiss();
  await shot("aspire-metrics", 4000);
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${aspire}/traces`);
  await page.waitForTimeout(3000);
  await dismiss();
  await page.getByText("trainer-0: trainer.", { exact: false }).first().click();
  await shot("aspire-trace", 4000);
  await page.setViewportSize({ width: 1440, height: 1500 });
  await page.goto(`${dashboard}/runs/${encodeURIComponent(runId)}`);
  // Once two epochs are validated the page has something on every chart.
  await page.waitForFunction(() => Number(document.querySelector("#chart-accuracy")?.dataset.points ?? 0) >= 4, null, { timeout: 600000 });
  await shot("dashboard-run");
  await page.setViewportSize({ width: 1440, height: 400 });
  await page.goto(dashboard);
  await shot("dashboard-runs", 2500);

  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
