using Trainer.Watchdog;

namespace Trainer.Training;

/// <summary>
/// Saves the learner's checkpoint on the main rank only: at the end of every epoch and, with
/// <paramref name="everySteps"/> above 0, after every that many optimizer steps within an epoch (a mid-epoch
/// checkpoint resumes at the next batch, bit-exactly). The file it replaces is kept as the previous checkpoint.
/// </summary>
internal sealed class SaveCheckpointCallback(Learner learner, CheckpointFiles files, string recipe, int everySteps = 0) : ILearnerCallback
{
    public void OnBatchEnd(BatchEnd batch)
    {
        // The last batch of an epoch is saved at the epoch's end, after validation.
        if (everySteps > 0 && batch.Step % everySteps == 0 && batch.Batch + 1 < batch.BatchesPerEpoch && learner.IsMain)
            Save();
    }

    public void OnEpochEnd(EpochResult epoch)
    {
        if (learner.IsMain) Save();
    }

    private void Save()
    {
        WorkerProgress.Enter(TrainingPhase.Checkpoint);
        files.Save(learner, recipe);
    }
}
