using System.Text.Json;
using Trainer.Runtime;

namespace Trainer.Training;

/// <summary>summary.json: the outcome of a run, for people and for scripts (written by the main rank).</summary>
internal sealed record TrainingSummary(
    double Accuracy,
    double ValidLoss,
    double TrainLoss,
    int Epochs,
    double ImagesPerSecond,
    double ImagesPerSecondPerRank,
    double Seconds,
    double DataWaitSeconds,
    int WorldSize,
    string Dataset,
    string Preset,
    int Width,
    int BatchSize,
    double Lr,
    double Wd,
    double DivFactor,
    double PctStart,
    int Seed,
    int Threads,
    int TrainImages,
    int ValidImages,
    bool Stopped,
    IReadOnlyList<EpochSummary> History)
{
    public const string FileName = "summary.json";

    /// <summary>Writes atomically (temporary file, then rename).</summary>
    public void Write(string path)
    {
        var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(this, SummaryJson.Default.TrainingSummary));
        File.Move(temporary, path, overwrite: true);
    }

    public static TrainingSummary Read(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), SummaryJson.Default.TrainingSummary) ?? throw new InvalidDataException($"{path}: empty summary.");
}

/// <summary>One finished epoch, as summary.json and checkpoints keep it (Epoch counts from 0).</summary>
internal sealed record EpochSummary(int Epoch, double TrainLoss, double ValidLoss, double Accuracy, double ImagesPerSecond, double Seconds)
{
    public static EpochSummary From(EpochResult e) => new(e.Epoch, e.TrainLoss, e.ValidLoss, e.Accuracy, e.ImagesPerSecond, e.Duration.TotalSeconds);
}
