namespace Trainer.Training;

/// <summary>What a fit is about to do. <paramref name="StartEpoch"/> is above 0 when resuming.</summary>
internal sealed record FitStart(int Epochs, int StartEpoch, int BatchesPerEpoch, int TotalSteps, int BatchSize, int TrainSamples, int ValidSamples);

/// <summary>After each optimizer step. <paramref name="Step"/> counts steps from the start of the schedule (1 after the first).</summary>
internal sealed record BatchEnd(int Epoch, int Batch, int BatchesPerEpoch, int Step, double Loss, double SmoothLoss, double LearningRate, double Momentum, double ImagesPerSecond, TimeSpan DataWait);

/// <summary>Validation totals over all ranks (padding duplicates excluded).</summary>
internal sealed record ValidationResult(int Epoch, double Loss, double Accuracy, long Samples);

/// <summary>
/// One finished epoch: the smoothed training loss as fastai prints it, the validation metrics, and the
/// training throughput of this rank (images per second, data-loader wait included).
/// </summary>
internal sealed record EpochResult(int Epoch, int Epochs, double TrainLoss, double ValidLoss, double Accuracy, double ImagesPerSecond, TimeSpan TrainTime, TimeSpan Duration, TimeSpan DataWait);

/// <summary>The whole fit. <paramref name="Stopped"/> when it ended early on request.</summary>
internal sealed record FitResult(IReadOnlyList<EpochResult> Epochs, TimeSpan Duration, double ImagesPerSecond, TimeSpan DataWait, bool Stopped);
