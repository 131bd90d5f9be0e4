namespace Trainer.Distributed.Nccl;

/// <summary>An NCCL collective queued on the CUDA stream; complete when the CUDA event recorded after it has fired.</summary>
internal sealed class NcclWork : Work
{
    private readonly NcclProcessGroup group;
    private readonly long deadline;
    private readonly Lock gate = new();
    private readonly long sequence;
    private CudaEventHandle? cudaEvent;
    private Exception? error;

    public NcclWork(NcclProcessGroup group, NcclProcessGroup.Issued issued, long deadline)
    {
        this.group = group;
        cudaEvent = issued.Event;
        sequence = issued.Sequence;
        this.deadline = deadline;
    }

    public override bool IsCompleted
    {
        get
        {
            lock (gate)
                return cudaEvent is null || group.Query(cudaEvent);
        }
    }

    public override void Wait()
    {
        lock (gate)
        {
            if (cudaEvent is not null)
            {
                try
                {
                    group.WaitFor(new NcclProcessGroup.Issued(cudaEvent, sequence), deadline);
                }
                catch (Exception e)
                {
                    error = e;
                }
                finally
                {
                    cudaEvent.Dispose();
                    cudaEvent = null;
                }
            }
            if (error is not null)
                throw error;
        }
    }

    public override async Task WaitAsync(CancellationToken cancellationToken = default)
    {
        while (!IsCompleted)
            await Task.Delay(1, cancellationToken);
        Wait();
    }
}
