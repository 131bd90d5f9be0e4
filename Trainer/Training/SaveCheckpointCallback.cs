namespace Trainer.Training;

/// <summary>Saves the learner's checkpoint at the end of every epoch, on the main rank only.</summary>
internal sealed class SaveCheckpointCallback(Learner learner, string path, string recipe) : ILearnerCallback
{
    public void OnEpochEnd(EpochResult epoch)
    {
        if (learner.IsMain) Checkpoint.Save(path, learner, recipe);
    }
}
