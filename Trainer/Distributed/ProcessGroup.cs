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
/// </summary>
public abstract class ProcessGroup : IDisposable
{
    public abstract int Rank { get; }

    public abstract int WorldSize { get; }

    public abstract Backend Backend { get; }

    /// <summary>Where the tensors of this group's collectives must live: the CPU, or (NCCL) this rank's GPU.</summary>
    public virtual torch.Device Device => torch.CPU;

    /// <summary>Reduces <paramref name="tensor"/> across all ranks in place; every rank ends with bit-identical values.</summary>
    public abstract void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum);

    public abstract Work AllReduceAsync(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum);

    /// <summary>Copies <paramref name="tensor"/> of rank <paramref name="root"/> into <paramref name="tensor"/> of every rank.</summary>
    public abstract void Broadcast(torch.Tensor tensor, int root);

    public abstract Work BroadcastAsync(torch.Tensor tensor, int root);

    /// <summary>
    /// Gathers every rank's <paramref name="input"/> into <paramref name="output"/>, rank r's at elements
    /// [r·n, (r+1)·n) where n = input.numel() (torch's all_gather_into_tensor; output may be [WorldSize·n] or
    /// [WorldSize, ...input.shape]). <paramref name="input"/> may be rank r's slice of <paramref name="output"/>.
    /// </summary>
    public abstract void AllGatherIntoTensor(torch.Tensor output, torch.Tensor input);

    public abstract Work AllGatherIntoTensorAsync(torch.Tensor output, torch.Tensor input);

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
    public abstract void Barrier();

    public abstract void Dispose();

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

        return ResolveBackend(options.Backend) switch
        {
            Backend.Nccl => await NcclProcessGroup.ConnectAsync(options, store, rank, worldSize, cancellationToken),
            _ => await CpuProcessGroup.ConnectAsync(options, store, rank, worldSize, advertiseAddress, cancellationToken),
        };
    }

    /// <summary>Auto means NCCL where it can run, else CPU; an explicit choice is kept (and fails later if unusable).</summary>
    public static Backend ResolveBackend(Backend requested) =>
        requested != Backend.Auto ? requested : NcclAvailability.Probe() is null ? Backend.Nccl : Backend.Cpu;

    private protected void CheckRoot(int root)
    {
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"Broadcast root must be a rank in [0, {WorldSize}) (got {root}).");
    }

    private protected static void CheckContiguous(torch.Tensor tensor, string operation, string parameter)
    {
        if (!tensor.is_contiguous())
            throw new ArgumentException(
                $"{operation} needs a contiguous tensor (got a non-contiguous {TensorMemory.Describe(tensor)}); pass tensor.contiguous() and copy the result back.",
                parameter);
    }

    private protected static void CheckAllGather(torch.Tensor output, torch.Tensor input, int worldSize)
    {
        if (output.dtype != input.dtype)
            throw new ArgumentException($"AllGather output dtype {output.dtype} differs from input dtype {input.dtype}; allocate the output with the input's dtype.", nameof(output));
        if (output.numel() != worldSize * input.numel())
            throw new ArgumentException(
                $"AllGather output has {output.numel()} elements but needs world size × input elements = {worldSize} × {input.numel()} = {worldSize * input.numel()}; allocate it as [{worldSize}, ...input.shape].",
                nameof(output));
    }
}
