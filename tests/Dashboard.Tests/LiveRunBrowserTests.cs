using Microsoft.Playwright;

namespace Dashboard.Tests;

/// <summary>
/// The whole path in a real browser: two trainer processes train and post to the real Dashboard while Debian's
/// chromium, driven by Playwright, watches the run page; the curves must grow while they train, and the finished
/// run must show up in the history. Finds chromium, or installs it where it can (see <see cref="ChromiumBrowser"/>).
/// </summary>
public sealed class LiveRunBrowserTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task The_run_page_shows_every_ranks_curves_growing_during_a_real_two_rank_run_then_the_run_in_the_history()
    {
        var chromium = ChromiumBrowser.Path();
        await using var server = await DashboardServer.StartAsync();
        var output = Directory.CreateTempSubdirectory("dashboard-browser-");
        try
        {
            const string runId = "browser-test";
            // 2 ranks × 20 steps per epoch × 2 epochs of a k=1 net: long enough to watch, short enough for CI.
            using var trainers = new TrainerRanks(2, runId, server.BaseAddress,
                ["--preset", "quick", "--dataset", "synthetic", "--limit-train", "640", "--limit-valid", "64", "--bs", "16", "--width", "1",
                 "--epochs", "2", "--output", output.FullName, "--log-every", "5"]);

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = chromium,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            });
            var page = await browser.NewPageAsync();
            page.SetDefaultTimeout((float)Generous.TotalMilliseconds);
            await page.GotoAsync(new Uri(server.BaseAddress, $"runs/{runId}").ToString());

            // The page polls every second: the loss curve gets its first points, then more while the ranks train.
            var loss = page.Locator("#chart-loss");
            await page.WaitForFunctionAsync("() => Number(document.querySelector('#chart-loss')?.dataset.points ?? 0) > 0");
            var first = int.Parse((await loss.GetAttributeAsync("data-points"))!);
            await page.WaitForFunctionAsync($"() => Number(document.querySelector('#chart-loss').dataset.points) > {first}");
            var second = int.Parse((await loss.GetAttributeAsync("data-points"))!);
            Assert.True(second > first, $"the loss curve did not grow: {first} then {second} points");
            // Both ranks have a row with their hardware while the run is live, and a legend entry on the curves.
            await page.Locator("#ranks tr[data-rank='1']").WaitForAsync();
            Assert.Equal(2, await page.Locator("#chart-loss .legend span").CountAsync());

            var exitCodes = await trainers.WaitAsync(Generous);
            Assert.True(exitCodes.All(code => code == 0), $"exit codes {string.Join(", ", exitCodes)}\n{trainers.Output}");

            await page.Locator("#status .badge.finished").WaitForAsync();
            Assert.Equal(2 * 40, int.Parse((await loss.GetAttributeAsync("data-points"))!)); // every step of both ranks arrived
            Assert.Equal(2, await page.Locator("#ranks tr[data-rank]").CountAsync());
            Assert.Equal("2/2", await page.Locator("[data-card='epoch']").InnerTextAsync());
            Assert.Equal(2 * 2, int.Parse((await page.Locator("#chart-accuracy").GetAttributeAsync("data-points"))!));

            await page.GotoAsync(server.BaseAddress.ToString());
            var row = page.Locator($"tr[data-run='{runId}']");
            await row.WaitForAsync();
            Assert.Contains("finished", await row.InnerTextAsync());
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
