namespace Dashboard.Runs;

// The trainer's wire format (Trainer/Telemetry/DashboardReport.cs), JSON in camelCase. The Dashboard keeps its own
// copy so that neither process references the other; the browser test runs real trainers against it.

/// <summary>One post from one rank: <see cref="Start"/> and <see cref="Fit"/> until accepted once, then new points.</summary>
public sealed record RankReport(RankStart? Start, FitInfo? Fit, IReadOnlyList<BatchPoint>? Batches, IReadOnlyList<EpochPoint>? Epochs, RankEnd? End, long Dropped);

public sealed record RankStart(int WorldSize, int LocalRank, DateTimeOffset StartedAt, HardwareInfo Hardware, IReadOnlyDictionary<string, string> Config);

public sealed record HardwareInfo(string Host, string Os, int Cores, int Threads, long MemoryBytes, string Device, long? GpuMemoryBytes, int ProcessId, string Backend, string Runtime);

public sealed record FitInfo(int Epochs, int StartEpoch, int BatchesPerEpoch, int TotalSteps, int BatchSize, int TrainSamples, int ValidSamples, DateTimeOffset StartedAt);

public sealed record BatchPoint(int Step, int Epoch, int Batch, double Loss, double SmoothLoss, double LearningRate, double Momentum,
    double ImagesPerSecond, double StepSeconds, double DataWaitSeconds, double AllReduceSeconds, long MemoryBytes, DateTimeOffset Time);

public sealed record EpochPoint(int Epoch, int Epochs, double TrainLoss, double ValidLoss, double Accuracy, double ImagesPerSecond, double DurationSeconds, DateTimeOffset Time);

public sealed record RankEnd(string Status, int EpochsDone, double? Accuracy, double ImagesPerSecond, double DurationSeconds, string? Error, DateTimeOffset Time);
