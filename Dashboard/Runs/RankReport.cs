using System.Text.Json;
using System.Text.Json.Serialization;

namespace Dashboard.Runs;

// The Dashboard's API contract with the trainers: POST /api/runs/{runId}/ranks/{rank}/reports, JSON in camelCase.
// The Trainer compiles this very file (linked in Trainer.csproj), so the two sides cannot drift apart.

/// <summary>
/// One post from one rank. <see cref="Start"/> and <see cref="Fit"/> ride along until one post has been accepted;
/// points are sent once. <see cref="Dropped"/> is the rank's running count of points it could not deliver.
/// </summary>
public sealed record RankReport(RankStart? Start, FitInfo? Fit, IReadOnlyList<BatchPoint>? Batches, IReadOnlyList<EpochPoint>? Epochs, RankEnd? End, long Dropped);

/// <summary>Who the rank is, what it runs on and the recipe it trains.</summary>
public sealed record RankStart(int WorldSize, int LocalRank, DateTimeOffset StartedAt, HardwareInfo Hardware, IReadOnlyDictionary<string, string> Config);

/// <summary>Host name, CPU cores, torch threads, memory, the training device and the collective backend.</summary>
public sealed record HardwareInfo(string Host, string Os, int Cores, int Threads, long MemoryBytes, string Device, long? GpuMemoryBytes, int ProcessId, string Backend, string Runtime);

/// <summary>The fit's shape, for progress and ETA.</summary>
public sealed record FitInfo(int Epochs, int StartEpoch, int BatchesPerEpoch, int TotalSteps, int BatchSize, int TrainSamples, int ValidSamples, DateTimeOffset StartedAt);

/// <summary>One training step on one rank. Step counts from 1; times in seconds.</summary>
public sealed record BatchPoint(int Step, int Epoch, int Batch, double Loss, double SmoothLoss, double LearningRate, double Momentum,
    double ImagesPerSecond, double StepSeconds, double DataWaitSeconds, double AllReduceSeconds, long MemoryBytes, DateTimeOffset Time);

/// <summary>One finished epoch (Epoch counts from 1).</summary>
public sealed record EpochPoint(int Epoch, int Epochs, double TrainLoss, double ValidLoss, double Accuracy, double ImagesPerSecond, double DurationSeconds, DateTimeOffset Time);

/// <summary>How the rank's run ended: finished, stopped (on request) or failed.</summary>
public sealed record RankEnd(string Status, int EpochsDone, double? Accuracy, double ImagesPerSecond, double DurationSeconds, string? Error, DateTimeOffset Time);

/// <summary>Source-generated JSON for the contract (camelCase, as ASP.NET Core's web defaults): it works in a trimmed publish.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(RankReport))]
public sealed partial class RankReportJson : JsonSerializerContext;
