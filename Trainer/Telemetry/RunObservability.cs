using System.Runtime.InteropServices;
using Dashboard.Runs;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Trainer.Data;
using Trainer.Distributed;
using Trainer.Training;

namespace Trainer.Telemetry;

/// <summary>
/// Hooks a training run up to both dashboards: the OpenTelemetry callback on every rank and, when the process was
/// launched with a Dashboard reference, the Dashboard reporter with this rank's hardware and recipe. Disposing it
/// reports a run that ended in an exception as failed and gives the last points a moment to go out.
/// </summary>
internal sealed class RunObservability : IAsyncDisposable
{
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(3);

    private readonly DashboardReporter? _reporter;
    private readonly DashboardCallback? _dashboard;
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;

    private readonly ILogger _logger;

    private RunObservability(DashboardReporter? reporter, DashboardCallback? dashboard, ILogger logger)
    {
        _reporter = reporter;
        _dashboard = dashboard;
        _logger = logger;
    }

    public static RunObservability Attach(Learner learner, TrainOptions options, DataBunch data, DistributedContract contract, string backend,
        IServiceProvider services, ILogger logger)
    {
        learner.Callbacks.Add(new TelemetryCallback(learner, contract.RunId, logger));
        var reporter = DashboardReporter.Create(services, contract.RunId, contract.Rank);
        if (reporter is null) return new RunObservability(null, null, logger);
        reporter.Start(new RankStart(contract.WorldSize, contract.LocalRank, DateTimeOffset.UtcNow, Hardware(options, learner, backend), Config(options, data, learner)));
        var dashboard = new DashboardCallback(learner, reporter);
        learner.Callbacks.Add(dashboard);
        logger.LogInformation("Reporting to the training Dashboard as rank {Rank} of run {RunId}", contract.Rank, contract.RunId);
        return new RunObservability(reporter, dashboard, logger);
    }

    /// <summary>Points this rank could not deliver to the Dashboard (0 without one).</summary>
    public long Dropped => _reporter?.Dropped ?? 0;

    public async ValueTask DisposeAsync()
    {
        if (_reporter is null) return;
        if (_dashboard is { Ended: false })
            _reporter.Add(new RankEnd("failed", 0, null, 0, (DateTimeOffset.UtcNow - _started).TotalSeconds, "the trainer stopped with an error; see its log", DateTimeOffset.UtcNow));
        await _reporter.CompleteAsync(FlushTimeout);
        await _reporter.DisposeAsync();
        if (_reporter.Dropped > 0)
            _logger.LogWarning("The training Dashboard missed {Dropped} of {Total} points from this rank (it was down, slow or refusing); training was not affected",
                _reporter.Dropped, _reporter.Dropped + _reporter.Sent);
    }

    private static HardwareInfo Hardware(TrainOptions options, Learner learner, string backend)
    {
        var gpu = GpuMemory.Describe();
        var device = learner.Model.parameters().FirstOrDefault()?.device.ToString() ?? "cpu";
        if (gpu is { } g && device.StartsWith("cuda", StringComparison.Ordinal)) device += $" ({g.Name})";
        return new HardwareInfo(Environment.MachineName, RuntimeInformation.OSDescription, Environment.ProcessorCount, options.Threads.GetValueOrDefault(),
            GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, device, gpu?.TotalBytes, Environment.ProcessId, backend,
            $"{RuntimeInformation.FrameworkDescription}, TorchSharp {typeof(torch).Assembly.GetName().Version}");
    }

    private static Dictionary<string, string> Config(TrainOptions options, DataBunch data, Learner learner) => new()
    {
        ["preset"] = options.Preset,
        ["epochs"] = options.Epochs.ToString(),
        ["lr"] = options.Lr.ToString("G4"),
        ["wd"] = options.Wd.ToString("G4"),
        ["bs"] = options.Bs.ToString(),
        ["div_factor"] = options.DivFactor.ToString("G4"),
        ["pct_start"] = options.PctStart.ToString("G4"),
        ["width"] = options.Width.ToString(),
        ["seed"] = options.Seed.ToString(),
        ["threads"] = $"{options.Threads}",
        ["dataset"] = data.Name,
        ["train_images"] = data.Train.Count.ToString(),
        ["valid_images"] = data.Valid.Count.ToString(),
        ["parameters"] = learner.Model.parameters().Sum(p => p.numel()).ToString(),
        ["output"] = Path.GetFullPath(options.Output),
    };
}
