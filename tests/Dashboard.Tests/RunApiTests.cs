using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dashboard.Runs;

namespace Dashboard.Tests;

public sealed class RunApiTests
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static async Task Post(HttpClient client, string runId, int rank, RankReport report)
    {
        using var response = await client.PostAsJsonAsync($"api/runs/{runId}/ranks/{rank}/reports", report, Json);
        Assert.True(response.StatusCode == HttpStatusCode.NoContent, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    [Fact]
    public async Task A_finished_two_rank_run_is_in_the_history_with_its_recipe_curves_and_result()
    {
        await using var server = await DashboardServer.StartAsync();
        using var client = server.CreateClient();
        for (var rank = 0; rank < 2; rank++)
        {
            await Post(client, "run-1", rank, new RankReport(Reports.Start(2, rank), Reports.Fit(), Reports.Batches(1, 10), [Reports.Epoch(1, 2, 0.4)], null, 0));
            await Post(client, "run-1", rank, new RankReport(null, null, Reports.Batches(11, 20), [Reports.Epoch(2, 2, 0.5)], Reports.End("finished", 0.5), rank));
        }

        var runs = await client.GetFromJsonAsync<RunSummary[]>("api/runs", Json);
        var run = Assert.Single(runs!);
        Assert.Equal("run-1", run.RunId);
        Assert.Equal("finished", run.Status);
        Assert.Equal(2, run.WorldSize);
        Assert.Equal(2, run.EpochsDone);
        Assert.Equal(0.5, run.Accuracy);
        Assert.Equal(100, run.ImagesPerSecond); // 50 per rank
        Assert.Equal(1, run.Dropped);
        Assert.Equal("0", run.Config["rank_that_sent"]); // the recipe is rank 0's
        Assert.Equal(21, run.DurationSeconds, precision: 0);

        var detail = await client.GetFromJsonAsync<RunDetail>("api/runs/run-1", Json);
        Assert.Equal([0, 1], detail!.Ranks.Select(r => r.Rank));
        Assert.All(detail.Ranks, r =>
        {
            Assert.Equal(20, r.Steps.Count);
            Assert.Equal(Enumerable.Range(1, 20), r.Steps.Step);
            Assert.Equal([1, 2], r.Epochs.Select(e => e.Epoch));
            Assert.Equal(0.25, r.AllReduceShare!.Value, precision: 6); // 0.08 of 0.32 s
            Assert.Equal($"host-{r.Rank}", r.Hardware!.Host);
            Assert.Equal(300L << 20, r.MemoryBytes);
        });
        Assert.Equal("finished · 2/2 epochs · accuracy 0.5000", detail.Progress.Text);
        Assert.Equal(1, detail.Progress.Fraction);

        // The run page's refreshes ask only for the steps after those it holds; the rest of the run comes whole.
        var newer = await client.GetFromJsonAsync<RunDetail>("api/runs/run-1?afterStep=15", Json);
        Assert.All(newer!.Ranks, r =>
        {
            Assert.Equal(20, r.Steps.Count);
            Assert.Equal(Enumerable.Range(16, 5), r.Steps.Step);
            Assert.Equal(detail.Ranks[r.Rank].Steps.SmoothLoss.Skip(15), r.Steps.SmoothLoss);
            Assert.Equal([1, 2], r.Epochs.Select(e => e.Epoch));
        });
        Assert.Equal(detail.Summary.Accuracy, newer.Summary.Accuracy);
    }

    [Fact]
    public async Task A_running_run_reports_epoch_progress_and_an_eta()
    {
        await using var server = await DashboardServer.StartAsync();
        using var client = server.CreateClient();
        await Post(client, "run-2", 0, new RankReport(Reports.Start(2, 0), Reports.Fit(epochs: 2, batchesPerEpoch: 10), Reports.Batches(1, 15), [Reports.Epoch(1, 2, 0.4)], null, 0));

        var progress = await client.GetFromJsonAsync<RunProgress>("api/runs/run-2/progress", Json);
        Assert.Equal("running", progress!.Status);
        Assert.Equal(2, progress.Epoch);
        Assert.Equal(2, progress.Epochs);
        Assert.Equal(15, progress.Step);
        Assert.Equal(0.75, progress.Fraction);
        Assert.NotNull(progress.EtaSeconds);
        Assert.StartsWith("epoch 2/2 · 75% · ETA", progress.Text);
    }

    [Fact]
    public async Task Bad_requests_are_refused_with_a_message_naming_the_value()
    {
        await using var server = await DashboardServer.StartAsync();
        using var client = server.CreateClient();

        using var badId = await client.PostAsJsonAsync("api/runs/bad%20id/ranks/0/reports", new RankReport(null, null, [], [], null, 0), Json);
        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);
        Assert.Contains("run id 'bad id'", await badId.Content.ReadAsStringAsync());

        using var badRank = await client.PostAsJsonAsync("api/runs/run-3/ranks/2/reports", new RankReport(Reports.Start(2, 2), null, [], [], null, 0), Json);
        Assert.Equal(HttpStatusCode.BadRequest, badRank.StatusCode);
        Assert.Contains("rank 2 with worldSize 2", await badRank.Content.ReadAsStringAsync());

        using var missing = await client.GetAsync("api/runs/never-reported");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("never-reported", await missing.Content.ReadAsStringAsync());
        Assert.Empty((await client.GetFromJsonAsync<RunSummary[]>("api/runs", Json))!);
    }

    [Fact]
    public async Task The_history_outlives_the_dashboard_and_the_pages_and_health_are_served()
    {
        var database = Path.Combine(Path.GetTempPath(), $"dashboard-tests-{Guid.NewGuid():N}", "dashboard.db");
        try
        {
            await using (var first = await DashboardServer.StartAsync(database))
            {
                using var client = first.CreateClient();
                await Post(client, "run-4", 0, new RankReport(Reports.Start(1, 0), Reports.Fit(), Reports.Batches(1, 20), [Reports.Epoch(2, 2, 0.7)], Reports.End("stopped", 0.7), 0));
            }
            await using var second = await DashboardServer.StartAsync(database);
            using var again = second.CreateClient();
            var run = Assert.Single((await again.GetFromJsonAsync<RunSummary[]>("api/runs", Json))!);
            Assert.Equal(("run-4", "stopped", 0.7), (run.RunId, run.Status, run.Accuracy));

            Assert.Contains("<title>Runs", await again.GetStringAsync("/"));
            Assert.Contains("id=\"chart-loss\"", await again.GetStringAsync("/runs/run-4"));
            Assert.Contains("compare.js", await again.GetStringAsync("/compare?runs=run-4"));
            Assert.Contains("export function lineChart", await again.GetStringAsync("/charts.js"));
            Assert.Equal("Healthy", await again.GetStringAsync("/health"));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(database)!, recursive: true);
        }
    }

    [Fact]
    public void A_rank_that_stops_reporting_without_an_end_is_lost()
    {
        var directory = Directory.CreateTempSubdirectory("dashboard-tests-");
        try
        {
            var clock = new ManualClock(DateTimeOffset.UtcNow);
            var store = new RunStore(Path.Combine(directory.FullName, "d.db"), clock);
            store.Add("run-5", 0, new RankReport(Reports.Start(1, 0), Reports.Fit(), Reports.Batches(1, 3), [], null, 0));
            Assert.Equal("running", store.Progress("run-5")!.Status);
            clock.Now += RunStatus.LostAfter + TimeSpan.FromSeconds(1);
            Assert.Equal("lost", store.Progress("run-5")!.Status);
            Assert.Equal("lost", store.Get("run-5")!.Ranks[0].Status);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            directory.Delete(recursive: true);
        }
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
