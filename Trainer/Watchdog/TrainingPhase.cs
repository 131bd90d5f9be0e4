namespace Trainer.Watchdog;

/// <summary>What a worker is doing, as its agent's hang watch reads it (the values travel in the progress file).</summary>
internal enum TrainingPhase : long
{
    /// <summary>Process start, data download and loading, the model, the rendezvous, a checkpoint's load.</summary>
    Starting = 0,

    /// <summary>Waiting for the data loader's next training batch.</summary>
    Data = 1,

    /// <summary>The forward and backward pass of a training step.</summary>
    Forward = 2,

    /// <summary>Averaging the gradients across the ranks.</summary>
    AllReduce = 3,

    /// <summary>The optimizer step.</summary>
    Optimizer = 4,

    Validation = 5,

    Checkpoint = 6,

    /// <summary>After the last epoch: summary, teardown.</summary>
    Finishing = 7,
}

internal static class TrainingPhases
{
    /// <summary>Phases where no progress for the hang timeout means a hang; the others may honestly take long (download, first step, validation, checkpoint).</summary>
    public static bool IsWatched(this TrainingPhase phase) => phase is TrainingPhase.Data or TrainingPhase.Forward or TrainingPhase.AllReduce or TrainingPhase.Optimizer;

    public static string Describe(this TrainingPhase phase) => phase switch
    {
        TrainingPhase.Starting => "starting (data, model, rendezvous)",
        TrainingPhase.Data => "waiting for the data loader",
        TrainingPhase.Forward => "the forward/backward pass",
        TrainingPhase.AllReduce => "the gradient all-reduce",
        TrainingPhase.Optimizer => "the optimizer step",
        TrainingPhase.Validation => "validation",
        TrainingPhase.Checkpoint => "writing a checkpoint",
        TrainingPhase.Finishing => "finishing",
        _ => $"phase {(long)phase}",
    };
}
