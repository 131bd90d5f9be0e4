using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Trainer.Training;

namespace Trainer.Telemetry;

/// <summary>
/// Records a fit as OpenTelemetry signals on every rank: a span per epoch (the sampled step spans and validation nest
/// in it), the <see cref="TrainerTelemetry"/> metrics tagged with this rank, and structured log records at fit start,
/// each epoch's end and fit end.
/// </summary>
internal sealed partial class TelemetryCallback(Learner learner, string runId, ILogger logger) : ILearnerCallback
{
    private readonly KeyValuePair<string, object?>[] _tags = TrainerTelemetry.IdentityOf(learner.Parallel.Rank, runId);
    private Activity? _epoch;
    private long _stepStarted;
    private TimeSpan _allReduceBefore;

    public void OnFitStart(FitStart fit) =>
        LogFitStart(logger, learner.Parallel.Rank, learner.Parallel.WorldSize, fit.Epochs, fit.StartEpoch, fit.BatchesPerEpoch, fit.BatchSize, fit.TrainSamples);

    public void OnEpochStart(int epoch)
    {
        _epoch?.Dispose();
        _epoch = TrainerTelemetry.Source.StartActivity(TrainerTelemetry.Spans.Epoch)?.SetTag(TrainerTelemetry.Tags.Epoch, epoch);
        _stepStarted = Stopwatch.GetTimestamp();
        _allReduceBefore = AllReduceTime;
    }

    public void OnBatchEnd(BatchEnd b)
    {
        var now = Stopwatch.GetTimestamp();
        var stepSeconds = Stopwatch.GetElapsedTime(_stepStarted, now).TotalSeconds;
        _stepStarted = now;
        var tags = _tags.AsSpan();
        TrainerTelemetry.TrainLoss.Record(b.SmoothLoss, tags);
        TrainerTelemetry.LearningRate.Record(b.LearningRate, tags);
        TrainerTelemetry.Momentum.Record(b.Momentum, tags);
        TrainerTelemetry.Throughput.Record(b.ImagesPerSecond, tags);
        TrainerTelemetry.StepDuration.Record(stepSeconds, tags);
        TrainerTelemetry.DataWait.Record(b.DataWait.TotalSeconds, tags);
        TrainerTelemetry.Steps.Add(1, tags);
        TrainerTelemetry.Images.Add(learner.Train.BatchSize, tags); // training batches are full (drop_last)
        if (learner.Parallel.GradientBytes > 0)
        {
            var allReduce = AllReduceTime;
            TrainerTelemetry.AllReduceDuration.Record((allReduce - _allReduceBefore).TotalSeconds, tags);
            TrainerTelemetry.AllReduceSize.Add(learner.Parallel.GradientBytes, tags);
            _allReduceBefore = allReduce;
        }
    }

    public void OnValidationEnd(ValidationResult validation)
    {
        TrainerTelemetry.ValidationLoss.Record(validation.Loss, _tags.AsSpan());
        TrainerTelemetry.ValidationAccuracy.Record(validation.Accuracy, _tags.AsSpan());
    }

    public void OnEpochEnd(EpochResult epoch)
    {
        TrainerTelemetry.Epoch.Record(epoch.Epoch + 1, _tags.AsSpan());
        _epoch?.SetTag("trainer.validation.accuracy", epoch.Accuracy).SetTag("trainer.validation.loss", epoch.ValidLoss).Dispose();
        _epoch = null;
        LogEpochEnd(logger, epoch.Epoch + 1, epoch.Epochs, epoch.TrainLoss, epoch.ValidLoss, epoch.Accuracy, epoch.ImagesPerSecond, epoch.Duration.TotalSeconds, epoch.DataWait.TotalSeconds);
    }

    public void OnFitEnd(FitResult fit)
    {
        // A fit stopped mid-epoch never reaches OnEpochEnd: close its span here.
        _epoch?.SetStatus(ActivityStatusCode.Error, "stopped").Dispose();
        _epoch = null;
        LogFitEnd(logger, fit.Stopped ? "stopped" : "finished", fit.Epochs.Count, fit.Duration.TotalSeconds, fit.ImagesPerSecond,
            fit.Epochs.Count > 0 ? fit.Epochs[^1].Accuracy : double.NaN);
    }

    private TimeSpan AllReduceTime => learner.Parallel.AllReduceTime;

    [LoggerMessage(EventId = 100, Level = LogLevel.Information,
        Message = "Fit start on rank {Rank}/{WorldSize}: {Epochs} epochs from epoch {StartEpoch}, {BatchesPerEpoch} batches of {BatchSize}, {TrainSamples} training images per rank")]
    private static partial void LogFitStart(ILogger logger, int rank, int worldSize, int epochs, int startEpoch, int batchesPerEpoch, int batchSize, int trainSamples);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information,
        Message = "Epoch {Epoch}/{Epochs}: train_loss {TrainLoss:F4} valid_loss {ValidLoss:F4} accuracy {Accuracy:F4}, {ImagesPerSecond:F0} images/s, {DurationSeconds:F1} s ({DataWaitSeconds:F1} s waiting for data)")]
    private static partial void LogEpochEnd(ILogger logger, int epoch, int epochs, double trainLoss, double validLoss, double accuracy, double imagesPerSecond, double durationSeconds, double dataWaitSeconds);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information,
        Message = "Fit {Outcome} after {EpochsDone} epoch(s) in {DurationSeconds:F1} s, {ImagesPerSecond:F0} images/s on this rank, accuracy {Accuracy:F4}")]
    private static partial void LogFitEnd(ILogger logger, string outcome, int epochsDone, double durationSeconds, double imagesPerSecond, double accuracy);
}
