using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Training;
using Trainer.Tests.Training;

namespace Trainer.Tests.Telemetry;

public sealed class RunControlCallbackTests
{
    private sealed class OnBatch(Action<BatchEnd> action) : ILearnerCallback
    {
        public void OnBatchEnd(BatchEnd batch) => action(batch);
    }

    private static void Request(TempDirectory output, string name, DateTime? written = null)
    {
        var path = output.Combine(RunControlCallback.FolderName, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "now");
        if (written is { } time) File.SetLastWriteTimeUtc(path, time);
    }

    [Fact]
    public void Stop_after_epoch_ends_the_fit_after_the_current_epoch_and_removes_the_request()
    {
        using var output = new TempDirectory();
        using var learner = TinyLearner.Create(trainImages: 16, validImages: 8, batchSize: 8);
        learner.Callbacks.Add(new RunControlCallback(learner, output.Path, "{}", NullLogger.Instance));
        learner.Callbacks.Add(new OnBatch(b => { if (b.Epoch == 1 && b.Batch == 0) Request(output, RunControlCallback.StopAfterEpochRequest); }));

        var fit = learner.FitOneCycle(epochs: 4, maxLr: 1e-3);

        Assert.True(fit.Stopped);
        Assert.Equal(2, fit.Epochs.Count); // epoch 2 (index 1) was finished, validated, then the fit ended
        Assert.Equal(2, learner.Epoch);
        Assert.False(File.Exists(output.Combine(RunControlCallback.FolderName, RunControlCallback.StopAfterEpochRequest)));
    }

    [Fact]
    public void Save_checkpoint_writes_a_snapshot_after_the_step_and_a_stale_request_is_ignored()
    {
        using var output = new TempDirectory();
        Request(output, RunControlCallback.StopAfterEpochRequest, written: DateTime.UtcNow.AddHours(-1)); // from an earlier run
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 8, batchSize: 8);
        learner.Callbacks.Add(new OnBatch(b => { if (b.Step == 2) Request(output, RunControlCallback.SaveCheckpointRequest); }));
        learner.Callbacks.Add(new RunControlCallback(learner, output.Path, "{\"recipe\":1}", NullLogger.Instance, pollInterval: TimeSpan.Zero));

        var fit = learner.FitOneCycle(epochs: 1, maxLr: 1e-3);

        Assert.False(fit.Stopped);
        Assert.Single(fit.Epochs);
        var snapshot = output.Combine(RunControlCallback.SnapshotFileName(2));
        Assert.True(File.Exists(snapshot), $"no {snapshot}; files: {string.Join(", ", Directory.GetFiles(output.Path))}");
        var info = Checkpoint.ReadInfo(snapshot);
        Assert.Equal(2, info.Step);
        Assert.Equal("{\"recipe\":1}", info.Recipe);
        Assert.Single(Directory.GetFiles(output.Path, "checkpoint-step*.ckpt"));
        Assert.False(File.Exists(output.Combine(RunControlCallback.FolderName, RunControlCallback.SaveCheckpointRequest)));
    }
}
