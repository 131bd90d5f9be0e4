using System.Net;
using System.Net.Sockets;
using Dashboard.Runs;
using Trainer.Telemetry;

namespace Trainer.Tests.Telemetry;

public sealed class DashboardReporterTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(20);

    private static BatchPoint Point(int step) =>
        new(step, 0, step - 1, 2.3, 2.3, 1e-3, 0.9, 100, 0.3, 0.01, 0.05, 1 << 20, DateTimeOffset.UtcNow);

    private static RankStart Start() =>
        new(2, 1, DateTimeOffset.UtcNow, new HardwareInfo("host", "linux", 2, 1, 1L << 30, "cpu", null, 42, "cpu", ".NET"), new Dictionary<string, string> { ["bs"] = "32" });

    [Fact]
    public async Task Delivers_the_start_once_and_every_point_to_a_working_dashboard()
    {
        await using var sink = new ReportSink();
        await using var reporter = new DashboardReporter(new HttpClient { BaseAddress = sink.BaseAddress }, "run-a", rank: 1, interval: Short);
        reporter.Start(Start());
        for (var step = 1; step <= 50; step++) Assert.True(reporter.Add(Point(step)));
        reporter.Add(new EpochPoint(1, 1, 2.0, 1.9, 0.3, 100, 5, DateTimeOffset.UtcNow));
        reporter.Add(new RankEnd("finished", 1, 0.3, 100, 5, null, DateTimeOffset.UtcNow));
        await reporter.CompleteAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(52, reporter.Sent);
        Assert.Equal(0, reporter.Dropped);
        Assert.All(sink.Accepted, r => Assert.Equal("/api/runs/run-a/ranks/1/reports", r.Path));
        Assert.Single(sink.Accepted, r => r.Body.GetProperty("start").ValueKind != System.Text.Json.JsonValueKind.Null);
        Assert.Equal(Enumerable.Range(1, 50), sink.Points("batches").Select(p => p.GetProperty("step").GetInt32()));
        Assert.Single(sink.Points("epochs"));
        Assert.Contains(sink.Accepted, r => r.Body.GetProperty("end").ValueKind == System.Text.Json.JsonValueKind.Object
                                            && r.Body.GetProperty("end").GetProperty("status").GetString() == "finished");
    }

    [Fact]
    public async Task A_dashboard_that_is_down_makes_points_drop_and_be_counted_without_blocking()
    {
        // Nothing listens on this port: every post fails at once with "connection refused".
        var port = FreeTcpPort.Next();
        await using var reporter = new DashboardReporter(new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") }, "run-b", 0, capacity: 16, interval: Short);
        reporter.Start(Start());
        var accepted = 0;
        for (var step = 1; step <= 5000; step++)
            if (reporter.Add(Point(step))) accepted++;
        Assert.True(accepted < 5000, "a queue of 16 took 5000 points while nothing drained it fast enough: it cannot be bounded");
        await reporter.CompleteAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(5000, reporter.Dropped);
        Assert.Equal(0, reporter.Sent);
        Assert.True(reporter.FailedPosts >= 1);
    }

    [Fact]
    public async Task A_dashboard_that_never_answers_costs_the_request_timeout_not_the_trainer()
    {
        // Accepts connections and reads nothing: a hung Dashboard.
        using var hung = new TcpListener(IPAddress.Loopback, 0);
        hung.Start();
        var port = ((IPEndPoint)hung.LocalEndpoint).Port;
        await using var reporter = new DashboardReporter(new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") }, "run-c", 0,
            capacity: 64, interval: Short, requestTimeout: TimeSpan.FromMilliseconds(300));
        reporter.Start(Start());
        for (var step = 1; step <= 1000; step++) reporter.Add(Point(step));

        var completion = reporter.CompleteAsync(TimeSpan.FromSeconds(1));
        Assert.Same(completion, await Task.WhenAny(completion, Task.Delay(TimeSpan.FromSeconds(30))));
        await completion;
        Assert.Equal(1000, reporter.Dropped);
        Assert.Equal(0, reporter.Sent);
    }

    [Fact]
    public async Task The_start_rides_along_until_a_post_is_accepted_and_later_points_get_through()
    {
        await using var sink = new ReportSink(failFirst: 1);
        await using var reporter = new DashboardReporter(new HttpClient { BaseAddress = sink.BaseAddress }, "run-d", 0, interval: Short);
        reporter.Start(Start());
        reporter.Add(Point(1));
        await WaitUntil(() => reporter.Dropped == 1 && Volatile.Read(ref sink.Requests) == 1);
        // The first post failed (503): its point is dropped. The back-off is 1 s; the next post must carry the start.
        reporter.Add(Point(2));
        await reporter.CompleteAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(1, reporter.Dropped);
        Assert.Equal(1, reporter.Sent);
        var (_, body) = Assert.Single(sink.Accepted);
        Assert.Equal(2, body.GetProperty("start").GetProperty("worldSize").GetInt32());
        Assert.Equal(1, body.GetProperty("dropped").GetInt64());
        Assert.Equal([2], sink.Points("batches").Select(p => p.GetProperty("step").GetInt32()));
    }

    [Fact]
    public void Without_a_dashboard_reference_nothing_is_registered()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings { DisableDefaults = true });
        Assert.False(DashboardReporter.IsConfigured(builder.Configuration));
        DashboardReporter.AddClient(builder);
        using var host = builder.Build();
        Assert.Null(DashboardReporter.Create(host.Services, "run-e", 0));

        var referenced = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new Microsoft.Extensions.Hosting.HostApplicationBuilderSettings { DisableDefaults = true });
        referenced.Configuration["services:dashboard:http:0"] = "http://127.0.0.1:9";
        Assert.True(DashboardReporter.IsConfigured(referenced.Configuration));
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not reached in 20 s");
            await Task.Delay(10);
        }
    }
}
