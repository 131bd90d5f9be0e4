using System.Net;
using TorchSharp;
using Trainer.Distributed.Cpu;
using Trainer.Distributed.Nccl;
using Trainer.Distributed.Store;

namespace Trainer.Distributed;

/// <summary>
/// The ranks of one training run and the collectives between them (torch.distributed's ProcessGroup). Every rank
/// must call the same collectives in the same order with tensors of the same dtype and size; a collective that
/// cannot finish within <see cref="ProcessGroupOptions.Timeout"/>, or loses a rank, throws
/// <see cref="DistributedException"/> on every surviving rank, after which the group is unusable.
/// Collectives run in issue order; issue them from one thread at a time. The *Async forms return at once and let
/// several collectives be in flight; their tensors must stay untouched until <see cref="Work.Wait"/> returns.
/// Shaped like c10d: this class validates every call, holds the failure state and makes each synchronous call the
/// wait of an issued one; a backend implements <see cref="Issue"/> (run or queue one collective, return its Work),
/// <see cref="CheckTensor"/> (what it can move) and <see cref="OnFailed"/> (what it does on the first failure).
/// </summary>
public abstract class ProcessGroup : IDisposable
{
    private DistributedException? _failure;
    private volatile bool _disposed;

    public abstract int Rank { get; }

    public abstract int WorldSize { get; }

    public abstract Backend Backend { get; }

    /// <summary>Where the tensors of this group's collectives must live: the CPU, or (NCCL) this rank's GPU.</summary>
    public virtual torch.Device Device => torch.CPU;

    /// <summary>Reduces <paramref name="tensor"/> across all ranks in place; every rank ends with bit-identical values.</summary>
    public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum) => Issue(AllReduceOf(tensor, op), blocking: true).Wait();

    public Work AllReduceAsync(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum) => Issue(AllReduceOf(tensor, op), blocking: false);

    /// <summary>Copies <paramref name="tensor"/> of rank <paramref name="root"/> into <paramref name="tensor"/> of every rank.</summary>
    public void Broadcast(torch.Tensor tensor, int root) => Issue(BroadcastOf(tensor, root), blocking: true).Wait();

    public Work BroadcastAsync(torch.Tensor tensor, int root) => Issue(BroadcastOf(tensor, root), blocking: false);

    /// <summary>
    /// Gathers every rank's <paramref name="input"/> into <paramref name="output"/>, rank r's at elements
    /// [r·n, (r+1)·n) where n = input.numel() (torch's all_gather_into_tensor; output may be [WorldSize·n] or
    /// [WorldSize, ...input.shape]). <paramref name="input"/> may be rank r's slice of <paramref name="output"/>.
    /// </summary>
    public void AllGatherIntoTensor(torch.Tensor output, torch.Tensor input) => Issue(AllGatherOf(output, input), blocking: true).Wait();

    public Work AllGatherIntoTensorAsync(torch.Tensor output, torch.Tensor input) => Issue(AllGatherOf(output, input), blocking: false);

    /// <summary>Returns every rank's <paramref name="input"/> stacked: shape [WorldSize, ...input.shape].</summary>
    public torch.Tensor AllGather(torch.Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var output = torch.empty(new long[] { WorldSize }.Concat(input.shape).ToArray(), input.dtype, input.device);
        try
        {
            AllGatherIntoTensor(output, input);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>Returns once every rank has entered the barrier.</summary>
    public void Barrier() => Issue(Collective.Barrier, blocking: true).Wait();

    public abstract void Dispose();

    /// <summary>
    /// The backend's one method (c10d's collective call): runs <paramref name="collective"/> after every one issued
    /// before it, on this thread when <paramref name="blocking"/> (returning a finished work), else in the background.
    /// Failures go through <see cref="Fail"/>.
    /// </summary>
    private protected abstract Work Issue(in Collective collective, bool blocking);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the fix when the backend cannot use <paramref name="tensor"/> (device, dtype).</summary>
    private protected abstract void CheckTensor(torch.Tensor tensor, string operation, string parameter);

    /// <summary>The backend's part of the first failure: tell the peers (CPU) or abort the communicator (NCCL). Runs once.</summary>
    private protected virtual void OnFailed(DistributedException error)
    {
    }

    /// <summary>Records the first failure, after which every call throws at once, and returns <paramref name="error"/> to throw.</summary>
    private protected DistributedException Fail(DistributedException error, bool notify = true)
    {
        if (Interlocked.CompareExchange(ref _failure, error, null) is null && notify)
            OnFailed(error);
        return error;
    }

    private protected void MarkDisposed() => _disposed = true;

    private protected bool IsDisposed => _disposed;

    private protected void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfFailed();
    }

    private protected void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } earlier)
            throw new DistributedException($"The process group is unusable after an earlier failure: {earlier.Message}", earlier.FailedRank, earlier) { Cause = earlier.Cause };
    }

    private Collective AllReduceOf(torch.Tensor tensor, ReduceOp op)
    {
        Check(tensor, "AllReduce", nameof(tensor));
        if (op is not (ReduceOp.Sum or ReduceOp.Avg or ReduceOp.Max or ReduceOp.Min))
            throw new ArgumentOutOfRangeException(nameof(op), op, $"Unknown ReduceOp {(int)op}; use Sum, Avg, Max or Min.");
        return new Collective(CollectiveKind.AllReduce, tensor, Op: op);
    }

    private Collective BroadcastOf(torch.Tensor tensor, int root)
    {
        Check(tensor, "Broadcast", nameof(tensor));
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"Broadcast root must be a rank in [0, {WorldSize}) (got {root}).");
        return new Collective(CollectiveKind.Broadcast, tensor, Root: root);
    }

    private Collective AllGatherOf(torch.Tensor output, torch.Tensor input)
    {
        Check(output, "AllGather", nameof(output));
        Check(input, "AllGather", nameof(input));
        if (output.dtype != input.dtype)
            throw new ArgumentException($"AllGather output dtype {output.dtype} differs from input dtype {input.dtype}; allocate the output with the input's dtype.", nameof(output));
        if (output.numel() != WorldSize * input.numel())
            throw new ArgumentException(
                $"AllGather output has {output.numel()} elements but needs world size × input elements = {WorldSize} × {input.numel()} = {WorldSize * input.numel()}; allocate it as [{WorldSize}, ...input.shape].",
                nameof(output));
        return new Collective(CollectiveKind.AllGather, output, input);
    }

    private void Check(torch.Tensor tensor, string operation, string parameter)
    {
        ArgumentNullException.ThrowIfNull(tensor, parameter);
        CheckTensor(tensor, operation, parameter);
        if (!tensor.is_contiguous())
            throw new ArgumentException(
                $"{operation} needs a contiguous tensor (got a non-contiguous {TensorMemory.Describe(tensor)}); pass tensor.contiguous() and copy the result back.",
                parameter);
    }

    /// <summary>
    /// Joins the group: rendezvous through <paramref name="store"/> under <see cref="ProcessGroupOptions.KeyPrefix"/>
    /// and connect to the other ranks. Every rank of the world must call it; it fails after the timeout otherwise.
    /// </summary>
    /// <param name="advertiseAddress">An address of this host the other ranks can reach (127.0.0.1 on one machine); the CPU backend listens on it.</param>
    public static async Task<ProcessGroup> CreateAsync(
        ProcessGroupOptions options, IStore store, int rank, int worldSize, IPAddress advertiseAddress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(advertiseAddress);
        options.Validate();
        if (worldSize < 1)
            throw new ArgumentOutOfRangeException(nameof(worldSize), worldSize, $"World size must be >= 1 (got {worldSize}); set WORLD_SIZE.");
        if (rank < 0 || rank >= worldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Rank must be in [0, {worldSize}) for world size {worldSize} (got {rank}); check RANK and WORLD_SIZE.");
        if (advertiseAddress.Equals(IPAddress.Any) || advertiseAddress.Equals(IPAddress.IPv6Any) || advertiseAddress.Equals(IPAddress.None))
            throw new ArgumentException(
                $"The advertise address must be one the other ranks can connect to (got {advertiseAddress}); pass this host's IP address, or 127.0.0.1 when all ranks run on one machine.",
                nameof(advertiseAddress));

        var scoped = new PrefixStore(options.StorePrefix, store);
        return ResolveBackend(options.Backend) switch
        {
            Backend.Nccl => await NcclProcessGroup.ConnectAsync(options, scoped, rank, worldSize, cancellationToken),
            _ => await CpuProcessGroup.ConnectAsync(options, scoped, rank, worldSize, advertiseAddress, cancellationToken),
        };
    }

    /// <summary>Auto means NCCL where it can run, else CPU; an explicit choice is kept (and fails later if unusable).</summary>
    public static Backend ResolveBackend(Backend requested) =>
        requested != Backend.Auto ? requested : NcclAvailability.Probe() is null ? Backend.Nccl : Backend.Cpu;
}
