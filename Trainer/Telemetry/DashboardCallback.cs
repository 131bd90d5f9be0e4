using System.Diagnostics;
using Dashboard.Runs;
using Trainer.Training;

namespace Trainer.Telemetry;

/// <summary>Turns the learner's events into Dashboard points for this rank: every step, every epoch, and the end.</summary>
internal sealed class DashboardCallback(Learner learner, DashboardReporter reporter) : ILearnerCallback
{
    private long _stepStarted;
    private TimeSpan _allReduceBefore;

    /// <summary>Whether the fit's end was reported (else the run ended in an exception).</summary>
    public bool Ended { get; private set; }

    public void OnFitStart(FitStart fit) =>
        reporter.Fit(new FitInfo(fit.Epochs, fit.StartEpoch, fit.BatchesPerEpoch, fit.TotalSteps, fit.BatchSize, fit.TrainSamples, fit.ValidSamples, DateTimeOffset.UtcNow));

    public void OnEpochStart(int epoch)
    {
        _stepStarted = Stopwatch.GetTimestamp();
        _allReduceBefore = AllReduceTime;
    }

    public void OnBatchEnd(BatchEnd b)
    {
        var now = Stopwatch.GetTimestamp();
        var stepSeconds = Stopwatch.GetElapsedTime(_stepStarted, now).TotalSeconds;
        _stepStarted = now;
        var allReduce = AllReduceTime;
        var allReduceSeconds = (allReduce - _allReduceBefore).TotalSeconds;
        _allReduceBefore = allReduce;
        reporter.Add(new BatchPoint(b.Step, b.Epoch, b.Batch, b.Loss, b.SmoothLoss, b.LearningRate, b.Momentum, b.ImagesPerSecond,
            stepSeconds, b.DataWait.TotalSeconds, allReduceSeconds, Environment.WorkingSet, DateTimeOffset.UtcNow));
    }

    public void OnEpochEnd(EpochResult e) =>
        reporter.Add(new EpochPoint(e.Epoch + 1, e.Epochs, e.TrainLoss, e.ValidLoss, e.Accuracy, e.ImagesPerSecond, e.Duration.TotalSeconds, DateTimeOffset.UtcNow));

    public void OnFitEnd(FitResult fit)
    {
        Ended = true;
        reporter.Add(new RankEnd(fit.Stopped ? "stopped" : "finished", learner.Epoch, fit.Epochs.Count > 0 ? fit.Epochs[^1].Accuracy : null,
            fit.ImagesPerSecond, fit.Duration.TotalSeconds, null, DateTimeOffset.UtcNow));
    }

    private TimeSpan AllReduceTime => learner.Parallel.AllReduceTime;
}
