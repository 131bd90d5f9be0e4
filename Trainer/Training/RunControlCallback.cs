using Microsoft.Extensions.Logging;
using Trainer.Runtime;

namespace Trainer.Training;

/// <summary>
/// Requests from outside the run, as files in &lt;output&gt;/control/ (the app host's resource commands write them;
/// `touch` works as well): <c>save-checkpoint</c> makes rank 0 save a snapshot after the current step, and
/// <c>stop-after-epoch</c> ends the fit once the current epoch is trained, validated and checkpointed. Files older
/// than this process are left over from an earlier run and ignored. The stop is agreed on by all ranks (a sum
/// all-reduce at each epoch's end) so every replica stops after the same epoch, even where the file is visible to
/// only some of them.
/// </summary>
internal sealed class RunControlCallback(Learner learner, string output, string recipe, ILogger logger, TimeSpan? pollInterval = null) : ILearnerCallback
{
    public const string FolderName = LaunchContract.ControlFolder;
    public const string SaveCheckpointRequest = LaunchContract.SaveCheckpointRequest;
    public const string StopAfterEpochRequest = LaunchContract.StopAfterEpochRequest;

    private readonly DateTime _startedUtc = DateTime.UtcNow.AddSeconds(-1);
    private readonly string _folder = Path.Combine(output, FolderName);
    private readonly TimeSpan _pollInterval = pollInterval ?? TimeSpan.FromSeconds(1); // a stat() a second is free; every step would be too
    private DateTime _nextPoll;
    private DateTime _lastSave;

    /// <summary>The snapshot file for a save at <paramref name="step"/>: epoch-end checkpoints stay the ones --resume continues from.</summary>
    public static string SnapshotFileName(int step) => $"checkpoint-step{step}.ckpt";

    public void OnBatchEnd(BatchEnd batch)
    {
        if (!learner.IsMain) return; // the replicas are identical: rank 0's copy is the model
        var now = DateTime.UtcNow;
        if (now < _nextPoll) return;
        _nextPoll = now + _pollInterval;
        if (Requested(SaveCheckpointRequest) is not { } requested || requested <= _lastSave) return;
        _lastSave = requested;
        var path = Path.Combine(output, SnapshotFileName(batch.Step));
        Checkpoint.Save(path, learner, recipe);
        TryDelete(SaveCheckpointRequest);
        logger.LogInformation("Saved checkpoint {Path} at step {Step} (epoch {Epoch}, batch {Batch}) as requested", path, batch.Step, batch.Epoch + 1, batch.Batch + 1);
    }

    public void OnEpochEnd(EpochResult epoch)
    {
        Span<double> votes = [Requested(StopAfterEpochRequest) is null ? 0 : 1];
        learner.Parallel.AllReduceSum(votes);
        if (votes[0] == 0 || epoch.Epoch + 1 >= epoch.Epochs) return;
        learner.RequestStop();
        if (learner.IsMain) TryDelete(StopAfterEpochRequest);
        logger.LogWarning("Stopping after epoch {Epoch}/{Epochs} as requested; continue with --resume", epoch.Epoch + 1, epoch.Epochs);
    }

    /// <summary>When the request file was written, if it was written while this process ran.</summary>
    private DateTime? Requested(string name)
    {
        var path = Path.Combine(_folder, name);
        if (!File.Exists(path)) return null;
        var written = File.GetLastWriteTimeUtc(path);
        return written >= _startedUtc ? written : null;
    }

    private void TryDelete(string name)
    {
        try
        {
            File.Delete(Path.Combine(_folder, name));
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
