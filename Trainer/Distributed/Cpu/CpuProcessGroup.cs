using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using TorchSharp;
using Trainer.Distributed.Store;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// Collectives between the ranks' CPUs over a TCP ring (the role of gloo). Synchronous calls run on the calling
/// thread and allocate nothing in steady state; asynchronous calls queue to one worker thread per group and run in
/// issue order. Supports float32, float64 and int64 CPU tensors.
/// </summary>
internal sealed class CpuProcessGroup : ProcessGroup
{
    /// <summary>
    /// All-reduces up to this size gather every rank's tensor and reduce locally in rank order: N-1 hops instead of the
    /// ring's 2(N-1), which is what matters for latency; larger ones use the bandwidth-optimal ring.
    /// </summary>
    public const long SmallAllReduceBytes = 16 * 1024;

    private readonly RingTransport? transport;
    private readonly RingPipeline? pipeline;
    private readonly TimeSpan timeout;
    private readonly long timeoutTicks;
    private readonly ICollectiveObserver? observer;
    private readonly Lock engine = new();
    private readonly Lock queueLock = new();
    private readonly Queue<PendingCollective> queue = new();
    private readonly SemaphoreSlim queued = new(0);
    private Thread? worker;
    private Task? lastQueued;
    private long sequence;
    private unsafe byte* gather;
    private long gatherBytes;
    private volatile DistributedException? failure;
    private volatile bool inFlight;
    private volatile bool disposing;
    private volatile bool disposed;

    private CpuProcessGroup(int rank, int worldSize, TimeSpan timeout, RingTransport? transport, long scratchBytes, ICollectiveObserver? observer)
    {
        this.observer = observer;
        Rank = rank;
        WorldSize = worldSize;
        this.timeout = timeout;
        timeoutTicks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        this.transport = transport;
        pipeline = transport is null ? null : new RingPipeline(transport, scratchBytes);
    }

    public override int Rank { get; }
    public override int WorldSize { get; }
    public override Backend Backend => Backend.Cpu;

    public static async Task<ProcessGroup> ConnectAsync(
        ProcessGroupOptions options, IStore store, int rank, int worldSize, IPAddress advertiseAddress, CancellationToken cancellationToken)
    {
        var transport = worldSize == 1 ? null : await RingRendezvous.ConnectAsync(options, store, rank, worldSize, advertiseAddress, cancellationToken);
        return new CpuProcessGroup(rank, worldSize, options.Timeout, transport, options.RingScratchBytes, options.Observer);
    }

    public override void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(tensor, "AllReduce", nameof(tensor));
        CheckOp(op);
        WaitForQueued();
        Run(CollectiveKind.AllReduce, tensor, op: op);
    }

    public override Work AllReduceAsync(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
    {
        CheckTensor(tensor, "AllReduce", nameof(tensor));
        CheckOp(op);
        return Enqueue(new PendingCollective(CollectiveKind.AllReduce, tensor.alias(), null, op, 0));
    }

    public override void Broadcast(torch.Tensor tensor, int root)
    {
        CheckTensor(tensor, "Broadcast", nameof(tensor));
        CheckRoot(root);
        WaitForQueued();
        Run(CollectiveKind.Broadcast, tensor, root: root);
    }

    public override Work BroadcastAsync(torch.Tensor tensor, int root)
    {
        CheckTensor(tensor, "Broadcast", nameof(tensor));
        CheckRoot(root);
        return Enqueue(new PendingCollective(CollectiveKind.Broadcast, tensor.alias(), null, ReduceOp.Sum, root));
    }

    public override void AllGatherIntoTensor(torch.Tensor output, torch.Tensor input)
    {
        CheckTensor(output, "AllGather", nameof(output));
        CheckTensor(input, "AllGather", nameof(input));
        CheckAllGather(output, input, WorldSize);
        WaitForQueued();
        Run(CollectiveKind.AllGather, output, input);
    }

    public override Work AllGatherIntoTensorAsync(torch.Tensor output, torch.Tensor input)
    {
        CheckTensor(output, "AllGather", nameof(output));
        CheckTensor(input, "AllGather", nameof(input));
        CheckAllGather(output, input, WorldSize);
        return Enqueue(new PendingCollective(CollectiveKind.AllGather, output.alias(), input.alias(), ReduceOp.Sum, 0));
    }

    public override void Barrier()
    {
        WaitForQueued();
        Run(CollectiveKind.Barrier, null);
    }

    /// <summary>
    /// Runs one collective on this thread, in issue order (the engine lock): <paramref name="tensor"/> is the data
    /// (all-gather's output; none for a barrier), <paramref name="input"/> all-gather's own part.
    /// </summary>
    private unsafe void Run(CollectiveKind kind, torch.Tensor? tensor, torch.Tensor? input = null, ReduceOp op = ReduceOp.Sum, int root = 0)
    {
        var described = input ?? tensor;
        var dataType = described?.dtype ?? torch.ScalarType.Int64;
        var elementSize = TensorMemory.ElementSize(dataType);
        var count = described?.numel() ?? 1;
        var bytes = count * elementSize;
        var data = tensor is null ? null : TensorMemory.Address(tensor);
        lock (engine)
        {
            ThrowIfUnusable();
            var header = CollectiveHeader.Create(kind, dataType, op, root, ++sequence, count);
            observer?.Issued(header.Sequence, kind, bytes);
            var succeeded = false;
            try
            {
                inFlight = true;
                if (kind == CollectiveKind.AllGather)
                {
                    var own = TensorMemory.Address(input!);
                    if (own != data + Rank * bytes)
                        Buffer.MemoryCopy(own, data + Rank * bytes, bytes, bytes);
                }
                if (pipeline is not null)
                    RunOnRing(kind, header, data, bytes, elementSize, dataType, op, root, Stopwatch.GetTimestamp() + timeoutTicks);
                succeeded = true;
            }
            catch (DistributedException e)
            {
                throw Fail(e);
            }
            finally
            {
                inFlight = false;
                observer?.Completed(header.Sequence, succeeded);
            }
        }
    }

    private unsafe void RunOnRing(CollectiveKind kind, CollectiveHeader header, byte* data, long bytes, int elementSize, torch.ScalarType dataType, ReduceOp op, int root, long deadline)
    {
        switch (kind)
        {
            case CollectiveKind.AllReduce when bytes <= SmallAllReduceBytes:
                // Fixed rank order 0, 1, ..., N-1 on every rank: bit-identical results.
                var slots = EnsureGather(WorldSize * bytes);
                Buffer.MemoryCopy(data, slots + Rank * bytes, bytes, bytes);
                pipeline!.Run(new RingSchedule(RingAlgorithm.AllGather, Rank, WorldSize, bytes, elementSize), slots, header, dataType, op, deadline, timeout);
                Buffer.MemoryCopy(slots, data, bytes, bytes);
                for (var r = 1; r < WorldSize; r++)
                    Reduction.Combine(dataType, op, data, slots + r * bytes, bytes);
                if (op == ReduceOp.Avg)
                    Reduction.Divide(dataType, data, bytes, WorldSize);
                break;
            case CollectiveKind.AllReduce:
                pipeline!.Run(new RingSchedule(RingAlgorithm.AllReduce, Rank, WorldSize, bytes, elementSize), data, header, dataType, op, deadline, timeout);
                break;
            case CollectiveKind.Broadcast:
                pipeline!.Run(new RingSchedule(RingAlgorithm.Broadcast, Rank, WorldSize, bytes, elementSize, root), data, header, dataType, op, deadline, timeout);
                break;
            case CollectiveKind.AllGather:
                pipeline!.Run(new RingSchedule(RingAlgorithm.AllGather, Rank, WorldSize, bytes, elementSize), data, header, dataType, op, deadline, timeout);
                break;
            default:
                // A barrier gathers one word from every rank: nobody gets all N before everybody has entered.
                var words = EnsureGather(WorldSize * sizeof(long));
                ((long*)words)[Rank] = header.Sequence;
                pipeline!.Run(new RingSchedule(RingAlgorithm.AllGather, Rank, WorldSize, sizeof(long), sizeof(long)), words, header, torch.ScalarType.Int64, ReduceOp.Sum, deadline, timeout);
                break;
        }
    }

    private unsafe byte* EnsureGather(long bytes)
    {
        if (gatherBytes < bytes)
        {
            NativeMemory.AlignedFree(gather);
            gather = null;
            gatherBytes = 0;
            gather = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            gatherBytes = bytes;
        }
        return gather;
    }

    /// <summary>Records the first failure (later calls throw at once) and tells the neighbours, so they stop waiting for this rank.</summary>
    private DistributedException Fail(DistributedException error)
    {
        if (disposing)
            error = new DistributedException($"Rank {Rank} left the process group (disposed) while a collective was running.", Rank, error);
        lock (queueLock)
        {
            if (failure is null)
            {
                failure = error;
                transport?.ReportFailure(error.FailedRank, error.Cause);
            }
        }
        return error;
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var earlier = failure;
        if (earlier is not null)
            throw new DistributedException($"The process group is unusable after an earlier failure: {earlier.Message}", earlier.FailedRank, earlier) { Cause = earlier.Cause };
    }

    private static void CheckTensor(torch.Tensor tensor, string operation, string parameter)
    {
        ArgumentNullException.ThrowIfNull(tensor, parameter);
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException(
                $"The CPU backend's {operation} needs a CPU tensor (got a {TensorMemory.Describe(tensor)}); use the NCCL backend for CUDA tensors or move the tensor with .cpu().",
                parameter);
        var dataType = tensor.dtype;
        if (dataType is not (torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Int64))
            throw new ArgumentException(
                $"The CPU backend's {operation} supports float32, float64 and int64 tensors (got a {TensorMemory.Describe(tensor)}); convert with .to(ScalarType.Float32).",
                parameter);
        CheckContiguous(tensor, operation, parameter);
    }

    private static void CheckOp(ReduceOp op)
    {
        if (op is not (ReduceOp.Sum or ReduceOp.Avg or ReduceOp.Max or ReduceOp.Min))
            throw new ArgumentOutOfRangeException(nameof(op), op, $"Unknown ReduceOp {(int)op}; use Sum, Avg, Max or Min.");
    }

    private Work Enqueue(PendingCollective collective)
    {
        try
        {
            ThrowIfUnusable();
        }
        catch
        {
            collective.Dispose();
            throw;
        }
        if (pipeline is null)
        {
            // World size 1: run inline (a copy at most) and hand back a finished work.
            try
            {
                Execute(collective);
            }
            finally
            {
                collective.Dispose();
            }
            return Work.Completed;
        }
        lock (queueLock)
        {
            queue.Enqueue(collective);
            lastQueued = collective.Completion.Task;
            worker ??= StartWorker();
        }
        queued.Release();
        return new TaskWork(collective.Completion.Task);
    }

    private Thread StartWorker()
    {
        var thread = new Thread(WorkerLoop) { IsBackground = true, Name = $"collectives rank {Rank}" };
        thread.Start();
        return thread;
    }

    private void WorkerLoop()
    {
        while (true)
        {
            queued.Wait();
            PendingCollective? collective;
            lock (queueLock)
            {
                if (!queue.TryDequeue(out collective))
                    return; // released without an item: disposal
            }
            try
            {
                if (disposed)
                    throw new ObjectDisposedException(GetType().FullName, "The process group was disposed before this collective ran.");
                Execute(collective);
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

    private void Execute(PendingCollective collective) =>
        Run(collective.Kind, collective.Tensor, collective.Input, collective.Op, collective.Root);

    /// <summary>A synchronous collective runs after every queued one (issue order); each has its own deadline, so this ends.</summary>
    private void WaitForQueued()
    {
        var last = lastQueued;
        if (last is null || last.IsCompleted)
            return;
        int pending;
        lock (queueLock)
            pending = queue.Count + 1;
        try
        {
            if (!last.Wait(timeout * (pending + 1)))
                throw new CollectiveTimeoutException($"Queued collectives on rank {Rank} did not finish within {timeout * (pending + 1)}.", null);
        }
        catch (AggregateException)
        {
            // The queued collective failed; its Work reports it, and the failure makes this call throw below.
        }
    }

    /// <summary>
    /// Closes the connections abruptly without telling anyone, as a crashing process does: the neighbours see the
    /// connections drop, exactly as when this rank's process dies.
    /// </summary>
    internal void AbortConnections()
    {
        lock (queueLock)
            failure ??= new DistributedException($"Rank {Rank} aborted its connections.", Rank);
        transport?.ShutdownAll();
    }

    public override unsafe void Dispose()
    {
        if (disposed)
            return;
        if (inFlight || lastQueued is { IsCompleted: false })
        {
            // Leaving mid-collective: tell the neighbours why, and wake the collective blocked on the sockets.
            disposing = true;
            Fail(new DistributedException("Disposed.", Rank));
            transport?.ShutdownAll();
        }
        disposed = true;
        queued.Release();
        if (worker is not null && !worker.Join(TimeSpan.FromSeconds(30)))
            return; // never free memory a stuck collective may still touch
        if (!engine.TryEnter(TimeSpan.FromSeconds(30)))
            return;
        try
        {
            lock (queueLock)
                while (queue.TryDequeue(out var left))
                {
                    left.Completion.TrySetException(new ObjectDisposedException(GetType().FullName, "The process group was disposed before this collective ran."));
                    left.Dispose();
                }
            pipeline?.Dispose();
            transport?.Dispose();
            NativeMemory.AlignedFree(gather);
            gather = null;
            queued.Dispose();
        }
        finally
        {
            engine.Exit();
        }
    }
}
