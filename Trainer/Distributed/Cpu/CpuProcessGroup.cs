using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using TorchSharp;
using Trainer.Distributed.Store;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// Collectives between the ranks' CPUs over a TCP ring (the role of gloo). Synchronous calls run on the calling
/// thread and allocate nothing in steady state; asynchronous calls go to the group's <see cref="CollectiveQueue"/>
/// and run in issue order. Supports float32, float64 and int64 CPU tensors.
/// </summary>
internal sealed class CpuProcessGroup : ProcessGroup
{
    /// <summary>
    /// All-reduces up to this size gather every rank's tensor and reduce locally in rank order: N-1 hops instead of the
    /// ring's 2(N-1), which is what matters for latency; larger ones use the bandwidth-optimal ring.
    /// </summary>
    public const long SmallAllReduceBytes = 16 * 1024;

    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly RingTransport? transport;
    private readonly RingPipeline? pipeline;
    private readonly CollectiveQueue queue;
    private readonly TimeSpan timeout;
    private readonly long timeoutTicks;
    private readonly ICollectiveObserver? observer;
    private readonly Lock engine = new();
    private long sequence;
    private unsafe byte* gather;
    private long gatherBytes;
    private volatile bool inFlight;
    private volatile bool disposing;

    private CpuProcessGroup(int rank, int worldSize, TimeSpan timeout, RingTransport? transport, long scratchBytes, ICollectiveObserver? observer)
    {
        Rank = rank;
        WorldSize = worldSize;
        this.timeout = timeout;
        timeoutTicks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        this.transport = transport;
        this.observer = observer;
        pipeline = transport is null ? null : new RingPipeline(transport, scratchBytes);
        queue = new CollectiveQueue(pending => Run(new Collective(pending.Kind, pending.Tensor, pending.Input, pending.Op, pending.Root)), $"collectives rank {rank}");
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

    /// <summary>Synchronous (and any world of one): on this thread, after the queued ones. Else queued, holding aliases of the tensors.</summary>
    private protected override Work Issue(in Collective collective, bool blocking)
    {
        ThrowIfUnusable();
        if (blocking || pipeline is null)
        {
            queue.WaitForQueued(Rank, timeout);
            Run(collective);
            return Work.Completed;
        }
        return queue.Enqueue(new PendingCollective(collective.Kind, collective.Tensor!.alias(), collective.Input?.alias(), collective.Op, collective.Root));
    }

    private protected override void CheckTensor(torch.Tensor tensor, string operation, string parameter)
    {
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException(
                $"The CPU backend's {operation} needs a CPU tensor (got a {TensorMemory.Describe(tensor)}); use the NCCL backend for CUDA tensors or move the tensor with .cpu().",
                parameter);
        if (tensor.dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Int64))
            throw new ArgumentException(
                $"The CPU backend's {operation} supports float32, float64 and int64 tensors (got a {TensorMemory.Describe(tensor)}); convert with .to(ScalarType.Float32).",
                parameter);
    }

    /// <summary>Tells the neighbours, so they stop waiting for this rank.</summary>
    private protected override void OnFailed(DistributedException error) => transport?.ReportFailure(error.FailedRank, error.Cause);

    /// <summary>Runs one collective on this thread, in issue order (the engine lock), and tells the observer.</summary>
    private unsafe void Run(in Collective collective)
    {
        var (kind, tensor, input, op, root) = collective;
        var dataType = collective.Described?.dtype ?? torch.ScalarType.Int64;
        var elementSize = TensorMemory.ElementSize(dataType);
        var count = collective.Described?.numel() ?? 1;
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
                throw Fail(disposing ? new DistributedException($"Rank {Rank} left the process group (disposed) while a collective was running.", Rank, e) : e);
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

    /// <summary>
    /// Closes the connections abruptly without telling anyone, as a crashing process does: the neighbours see the
    /// connections drop, exactly as when this rank's process dies.
    /// </summary>
    internal void AbortConnections()
    {
        Fail(new DistributedException($"Rank {Rank} aborted its connections.", Rank), notify: false);
        transport?.ShutdownAll();
    }

    public override unsafe void Dispose()
    {
        if (IsDisposed)
            return;
        if (inFlight || queue.Busy)
        {
            // Leaving mid-collective: tell the neighbours why, and wake the collective blocked on the sockets.
            disposing = true;
            Fail(new DistributedException($"Rank {Rank} left the process group (disposed) while a collective was running.", Rank, new DistributedException("Disposed.", Rank)));
            transport?.ShutdownAll();
        }
        MarkDisposed();
        if (!queue.Stop(StopTimeout) || !engine.TryEnter(StopTimeout))
            return; // never free memory a stuck collective may still touch
        try
        {
            pipeline?.Dispose();
            transport?.Dispose();
            NativeMemory.AlignedFree(gather);
            gather = null;
            queue.Dispose();
        }
        finally
        {
            engine.Exit();
        }
    }
}
