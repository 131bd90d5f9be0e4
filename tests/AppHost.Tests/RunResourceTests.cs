using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace AppHost.Tests;

public class RunResourceTests
{
    [Fact]
    public async Task The_run_shows_its_epoch_links_to_the_dashboard_and_stop_after_this_epoch_stops_every_rank()
    {
        var output = Directory.CreateTempSubdirectory("apphost-run-");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await using var run = await AppHostRun.StartAsync(
            [
                "--Trainers", "2", "--Dataset", "synthetic", "--Output", output.FullName, "--RunId", "apphost-stop-test",
                "--DashboardDatabase", Path.Combine(output.FullName, "dashboard.db"),
                "--TrainerArgs", "--limit-train 1024 --limit-valid 128 --bs 32 --width 1 --epochs 4",
            ], timeout.Token);

            // The trainers report to the Dashboard; the app host turns its progress into the run's state.
            var training = await run.Notifications.WaitForResourceAsync("run",
                e => e.Snapshot.State?.Text?.StartsWith("Epoch ", StringComparison.Ordinal) == true, timeout.Token);
            Assert.Matches(@"^Epoch [12] of 4", training.Snapshot.State!.Text);
            Assert.Contains(training.Snapshot.Urls, u => u.Url.EndsWith("/runs/apphost-stop-test", StringComparison.Ordinal));
            await run.Notifications.WaitForResourceAsync("trainer-1", e => e.Snapshot.Urls.Any(u => u.Url.Contains("/runs/apphost-stop-test#rank-1")), timeout.Token);

            var result = await run.Services.GetRequiredService<ResourceCommandService>().ExecuteCommandAsync(training.ResourceId, "stop-after-epoch", timeout.Token);
            Assert.True(result.Success, result.Message);

            string[] names = ["trainer-0", "trainer-1"];
            var exitCodes = await Task.WhenAll(names.Select(name => run.WaitForExitAsync(name, timeout.Token)));
            Assert.True(exitCodes.All(code => code == 130), $"exit codes {string.Join(", ", exitCodes)} (130 = stopped on request):\n{string.Join('\n', run.Logs("trainer-0"))}");
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(output.FullName, "summary.json")));
            var epochs = summary.RootElement.GetProperty("epochs").GetInt32();
            Assert.InRange(epochs, 1, 3);
            Assert.True(summary.RootElement.GetProperty("stopped").GetBoolean());

            var stopped = await run.Notifications.WaitForResourceAsync("run", e => e.Snapshot.State?.Text == "Stopped", timeout.Token);
            Assert.Contains(stopped.Snapshot.Properties, p => p.Name == "trainer.progress" && Equals(p.Value, $"stopped · {epochs}/4 epochs · accuracy {summary.RootElement.GetProperty("accuracy").GetDouble():F4}"));

            using var client = new HttpClient { BaseAddress = run.GetEndpoint("dashboard", "http") };
            using var runs = JsonDocument.Parse(await client.GetStringAsync("/api/runs", timeout.Token));
            var listed = Assert.Single(runs.RootElement.EnumerateArray());
            Assert.Equal("apphost-stop-test", listed.GetProperty("runId").GetString());
            Assert.Equal("stopped", listed.GetProperty("status").GetString());
            Assert.Equal(2, listed.GetProperty("ranksReporting").GetInt32());
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
