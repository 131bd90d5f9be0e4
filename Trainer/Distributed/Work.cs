namespace Trainer.Distributed;

/// <summary>
/// Handle of an asynchronous collective (torch.distributed's Work). The collective runs in issue order behind the
/// earlier ones of the same group; the tensors it uses must stay untouched until it completes.
/// </summary>
public abstract class Work
{
    /// <summary>A work that has already finished successfully (world size 1, empty tensors).</summary>
    public static Work Completed { get; } = new TaskWork(Task.CompletedTask);

    public abstract bool IsCompleted { get; }

    /// <summary>Blocks until the collective finished; throws its <see cref="DistributedException"/> if it failed.</summary>
    public abstract void Wait();

    public abstract Task WaitAsync(CancellationToken cancellationToken = default);
}
