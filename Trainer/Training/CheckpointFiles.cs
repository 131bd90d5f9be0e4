namespace Trainer.Training;

/// <summary>
/// The checkpoints of one --output folder: checkpoint.ckpt, the latest, and checkpoint.prev.ckpt, the one it
/// replaced. Saving rotates them (each step an atomic rename); resuming takes the newest intact one, and says so
/// loudly when that is not the latest. A folder whose checkpoints are all damaged is an error, never a silent
/// fresh start.
/// </summary>
internal sealed class CheckpointFiles(string folder)
{
    public const string PreviousFileName = "checkpoint.prev.ckpt";

    public string Latest { get; } = Path.Combine(folder, Checkpoint.FileName);

    public string Previous { get; } = Path.Combine(folder, PreviousFileName);

    /// <exception cref="CheckpointWriteException">Nothing was replaced: the checkpoints on disk are as before.</exception>
    public void Save(Learner learner, string recipe) => Checkpoint.Save(Latest, learner, recipe, Previous);

    /// <summary>The newest intact checkpoint and its metadata; null when the folder has none at all.</summary>
    /// <param name="warn">Told, in one line, when the latest checkpoint is missing or damaged and the previous one is used.</param>
    /// <exception cref="CorruptCheckpointException">Checkpoints exist but none is intact.</exception>
    public (string Path, CheckpointInfo Info)? FindNewestIntact(Action<string> warn)
    {
        Checkpoint.RemoveTemporaryFiles(Latest);
        string? latestProblem = null;
        if (File.Exists(Latest))
        {
            try
            {
                return (Latest, Checkpoint.ReadInfo(Latest));
            }
            catch (CorruptCheckpointException e)
            {
                latestProblem = e.Message;
            }
        }
        if (!File.Exists(Previous))
            return latestProblem is null
                ? null
                : throw new CorruptCheckpointException($"{latestProblem} There is no {PreviousFileName} to fall back on; delete {Latest} to start over, or choose another --output.");
        CheckpointInfo info;
        try
        {
            info = Checkpoint.ReadInfo(Previous);
        }
        catch (CorruptCheckpointException e)
        {
            throw new CorruptCheckpointException($"no intact checkpoint in {folder}: {latestProblem ?? $"{Latest} is missing."} {e.Message}");
        }
        warn($"{latestProblem ?? $"{Latest} is missing (a save was interrupted)."} Resuming from the previous checkpoint {Previous} " +
             $"(epoch {info.Epoch}, step {info.Step}, saved {info.SavedAt:u}) instead.");
        return (Previous, info);
    }
}
