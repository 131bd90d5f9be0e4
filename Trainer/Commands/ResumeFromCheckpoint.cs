using Trainer.Runtime;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Trainer.Distributed;
using Trainer.Training;

namespace Trainer.Commands;

/// <summary>
/// --resume: restores the learner from the newest intact checkpoint of --output (the previous one, with a warning,
/// when the latest is damaged or missing), refuses a checkpoint of another recipe, and makes sure every rank
/// resumed from the same step. A folder whose checkpoints are all damaged stops the run; nothing is silently
/// started over.
/// </summary>
internal static class ResumeFromCheckpoint
{
    /// <returns>Null to go on training; otherwise the exit code to stop with (the error is printed).</returns>
    public static int? Apply(TrainOptions options, CheckpointFiles files, Learner learner, ProcessGroup? group, TextWriter output, ILogger logger)
    {
        string? resumedFrom = null;
        if (options.Resume)
        {
            try
            {
                if (files.FindNewestIntact(warning => Warn(warning, logger)) is { } found)
                {
                    if (options.RecipeDifference(found.Info.Recipe) is { } difference)
                        return Error($"--resume: {difference}; resume with the same recipe, or choose another --output.");
                    Checkpoint.Load(found.Path, learner);
                    resumedFrom = found.Path;
                    var batches = learner.Train.BatchCount;
                    if (learner.Step < (long)learner.Epoch * batches || learner.Step >= (long)(learner.Epoch + 1) * batches)
                        return Error($"--resume: {found.Path} is at step {learner.Step} after {learner.Epoch} epochs, which does not fit {batches} batches per epoch on this rank: " +
                                     "it was saved with another WORLD_SIZE; resume with the same number of ranks, or choose another --output.");
                }
            }
            catch (CorruptCheckpointException e)
            {
                return Error(e.Message);
            }
            catch (InvalidDataException e)
            {
                return Error(e.Message);
            }
        }
        if (group is { WorldSize: > 1 } && Disagreement(group, learner, resumedFrom is not null) is { } disagreement)
            return Error(disagreement);
        if (resumedFrom is not null)
            output.WriteLine($"resumed from {resumedFrom}: {learner.Epoch} of {options.Epochs} epochs done (step {learner.Step})");
        else if (options.Resume)
            output.WriteLine($"--resume: no checkpoint at {files.Latest} yet; starting from scratch");
        return null;
    }

    /// <summary>Every rank must continue from the same step, or the replicas would train on from different states.</summary>
    private static string? Disagreement(ProcessGroup group, Learner learner, bool resumed)
    {
        using var mine = torch.tensor(new long[] { learner.Step, resumed ? 1 : 0 });
        using var all = group.AllGather(mine);
        var values = all.data<long>().ToArray();
        var ranks = Enumerable.Range(0, group.WorldSize).Select(r => (Rank: r, Step: values[2 * r], Resumed: values[2 * r + 1] != 0)).ToArray();
        if (ranks.All(r => r.Step == ranks[0].Step && r.Resumed == ranks[0].Resumed))
            return null;
        var states = string.Join(", ", ranks.Select(r => r.Resumed ? $"rank {r.Rank} at step {r.Step}" : $"rank {r.Rank} from scratch"));
        return $"--resume: the ranks found different checkpoints ({states}); --output must be one folder every rank reads (shared storage when the ranks run on several machines).";
    }

    private static void Warn(string warning, ILogger logger)
    {
        logger.LogWarning("checkpoint: {Warning}", warning);
        Console.Error.WriteLine($"warning: {warning}");
    }

    private static int Error(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return ExitCodes.BadConfiguration;
    }
}
