namespace Trainer.Training;

/// <summary>Progress as plain lines (for logs and pipes): one every <c>every</c> batches, and fastai's table row per epoch.</summary>
internal sealed class LogLinesCallback(TextWriter output, int every) : ILearnerCallback
{
    private int _epochs;
    private int _totalSteps;
    private int _startStep;
    private DateTime _start;

    public void OnFitStart(FitStart fit)
    {
        _epochs = fit.Epochs;
        _totalSteps = fit.TotalSteps;
        _startStep = fit.StartEpoch * fit.BatchesPerEpoch;
        _start = DateTime.UtcNow;
        output.WriteLine($"fit_one_cycle: {fit.Epochs} epochs from epoch {fit.StartEpoch}, {fit.BatchesPerEpoch} batches of {fit.BatchSize} per epoch, {fit.TrainSamples} training and {fit.ValidSamples} validation images per rank");
        output.WriteLine(EpochTable.Header);
    }

    public void OnBatchEnd(BatchEnd b)
    {
        if ((b.Batch + 1) % every != 0 && b.Batch + 1 != b.BatchesPerEpoch) return;
        var done = b.Step - _startStep;
        var elapsed = DateTime.UtcNow - _start;
        var eta = done > 0 ? TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (_totalSteps - b.Step)) : TimeSpan.Zero;
        output.WriteLine($"epoch {b.Epoch + 1}/{_epochs} batch {b.Batch + 1}/{b.BatchesPerEpoch} loss {b.SmoothLoss:F4} lr {b.LearningRate:G4} mom {b.Momentum:F3} {b.ImagesPerSecond:F0} img/s data wait {b.DataWait.TotalMilliseconds:F1} ms ETA {eta:hh\\:mm\\:ss}");
    }

    public void OnEpochEnd(EpochResult epoch) => output.WriteLine(EpochTable.Row(epoch));
}
