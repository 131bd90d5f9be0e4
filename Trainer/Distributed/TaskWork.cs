namespace Trainer.Distributed;

/// <summary>A <see cref="Work"/> completed by whoever runs the collective (the CPU backend's worker thread).</summary>
internal sealed class TaskWork : Work
{
    private readonly Task task;

    public TaskWork(Task task) => this.task = task;

    public override bool IsCompleted => task.IsCompleted;

    // The collective has its own deadline, so this wait ends by then at the latest.
    public override void Wait() => task.GetAwaiter().GetResult();

    public override Task WaitAsync(CancellationToken cancellationToken = default) => task.WaitAsync(cancellationToken);
}
