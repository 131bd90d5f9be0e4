namespace Trainer.Distributed.Cpu;

/// <summary>
/// The CPU group's asynchronous collectives: one background thread runs them in issue order, each completing its
/// <see cref="PendingCollective.Completion"/>. Started on the first one, so a group used only synchronously has no thread.
/// </summary>
internal sealed class CollectiveQueue(Action<PendingCollective> execute, string threadName) : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Queue<PendingCollective> _queue = new();
    private readonly SemaphoreSlim _queued = new(0);
    private Thread? _worker;
    private Task? _last;
    private volatile bool _stopped;

    /// <summary>True while a queued collective has not finished.</summary>
    public bool Busy => _last is { IsCompleted: false };

    public Work Enqueue(PendingCollective collective)
    {
        lock (_lock)
        {
            _queue.Enqueue(collective);
            _last = collective.Completion.Task;
            _worker ??= Start();
        }
        _queued.Release();
        return new TaskWork(collective.Completion.Task);
    }

    /// <summary>
    /// Waits until every queued collective has finished, so a synchronous one runs after them (issue order). Each has
    /// its own deadline, so this ends; a queued failure is its work's to report.
    /// </summary>
    public void WaitForQueued(int rank, TimeSpan timeout)
    {
        var last = _last;
        if (last is null || last.IsCompleted)
            return;
        int pending;
        lock (_lock)
            pending = _queue.Count + 1;
        try
        {
            if (!last.Wait(timeout * (pending + 1)))
                throw new CollectiveTimeoutException($"Queued collectives on rank {rank} did not finish within {timeout * (pending + 1)}.", null);
        }
        catch (AggregateException)
        {
        }
    }

    /// <summary>Ends the thread (after the collective it runs) and fails what is still queued; false when it did not end within <paramref name="timeout"/>.</summary>
    public bool Stop(TimeSpan timeout)
    {
        _stopped = true;
        _queued.Release();
        if (_worker is not null && !_worker.Join(timeout))
            return false;
        lock (_lock)
            while (_queue.TryDequeue(out var left))
            {
                left.Completion.TrySetException(new ObjectDisposedException(nameof(CpuProcessGroup), "The process group was disposed before this collective ran."));
                left.Dispose();
            }
        return true;
    }

    public void Dispose() => _queued.Dispose();

    private Thread Start()
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = threadName };
        thread.Start();
        return thread;
    }

    private void Loop()
    {
        while (true)
        {
            _queued.Wait();
            PendingCollective? collective;
            lock (_lock)
            {
                if (_stopped || !_queue.TryDequeue(out collective))
                    return;
            }
            try
            {
                execute(collective);
                collective.Completion.SetResult();
            }
            catch (Exception e)
            {
                collective.Completion.SetException(e);
            }
            finally
            {
                collective.Dispose();
            }
        }
    }
}
