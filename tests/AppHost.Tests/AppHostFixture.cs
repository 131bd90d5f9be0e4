using System.Collections.Concurrent;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace AppHost.Tests;

/// <summary>Starts the real AppHost (DCP, real Trainer processes) with the given arguments and collects each trainer's logs.</summary>
public sealed class AppHostRun : IAsyncDisposable
{
    readonly DistributedApplication _app;
    readonly ConcurrentDictionary<string, ConcurrentQueue<string>> _logs = new();
    readonly CancellationTokenSource _stop = new();
    string? _scratch;

    AppHostRun(DistributedApplication app) => _app = app;

    public static async Task<AppHostRun> StartAsync(string[] args, CancellationToken cancellationToken)
    {
        // Keep the tests' runs out of the developer's run history (runs/dashboard.db).
        string? scratch = null;
        if (!args.Contains("--DashboardDatabase"))
        {
            scratch = Path.Combine(Path.GetTempPath(), $"apphost-tests-{Guid.NewGuid():N}");
            args = [.. args, "--DashboardDatabase", Path.Combine(scratch, "dashboard.db")];
        }
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
            args, (options, _) => options.DisableDashboard = true, cancellationToken);
        // With the dashboard off nothing listens for OTLP, and every process would spend ~15 s at exit flushing to nowhere.
        foreach (var project in builder.Resources.OfType<ProjectResource>())
            builder.CreateResourceBuilder(project).WithEnvironment(context => context.EnvironmentVariables.Remove("OTEL_EXPORTER_OTLP_ENDPOINT"));
        var app = await builder.BuildAsync(cancellationToken);
        var run = new AppHostRun(app) { _scratch = scratch };
        run.CollectLogs();
        await app.StartAsync(cancellationToken);
        return run;
    }

    public ResourceNotificationService Notifications => _app.Services.GetRequiredService<ResourceNotificationService>();

    public IServiceProvider Services => _app.Services;

    public Uri GetEndpoint(string resourceName, string endpointName) => _app.GetEndpoint(resourceName, endpointName);

    public IReadOnlyList<string> Logs(string resourceName) =>
        _logs.TryGetValue(resourceName, out var lines) ? lines.ToArray() : [];

    /// <summary>Waits until the resource reaches a terminal state and returns its exit code.</summary>
    public async Task<int?> WaitForExitAsync(string resourceName, CancellationToken cancellationToken)
    {
        var finished = await Notifications.WaitForResourceAsync(resourceName,
            e => KnownResourceStates.TerminalStates.Contains(e.Snapshot.State?.Text), cancellationToken);
        return finished.Snapshot.ExitCode;
    }

    void CollectLogs()
    {
        var loggers = _app.Services.GetRequiredService<ResourceLoggerService>();
        _ = Task.Run(async () =>
        {
            var watched = new HashSet<string>();
            try
            {
                await foreach (var e in Notifications.WatchAsync(_stop.Token))
                {
                    // WatchAsync needs the resource id from the event, not the model name.
                    if (!watched.Add(e.ResourceId)) continue;
                    var lines = _logs.GetOrAdd(e.Resource.Name, _ => new ConcurrentQueue<string>());
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await foreach (var batch in loggers.WatchAsync(e.ResourceId).WithCancellation(_stop.Token))
                                foreach (var line in batch) lines.Enqueue(line.Content);
                        }
                        catch (OperationCanceledException) { }
                    });
                }
            }
            catch (OperationCanceledException) { }
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_scratch is not null && Directory.Exists(_scratch)) Directory.Delete(_scratch, recursive: true);
        _stop.Dispose();
    }
}
