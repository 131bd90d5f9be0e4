namespace Trainer.Distributed.Cpu;

/// <summary>
/// What one rank sends and receives, transmission by transmission, in a ring collective. Send t forwards what receive
/// t - <see cref="Lag"/> brought in (after reducing it), so a rank starts forwarding a chunk while it is still
/// arriving: the collective is one pipelined stream per direction.
/// <list type="bullet">
/// <item>AllReduce: reduce-scatter (N-1 steps; chunk c is reduced along the ring starting at rank c, so its sum is
/// ((x_c + x_c+1) + x_c+2) + ... in that fixed order and lands complete on rank c-1), then all-gather (N-1 steps).
/// Every rank ends with the owner's bits.</item>
/// <item>AllGather: block b (rank b's input) travels N-1 steps along the ring.</item>
/// <item>Broadcast: the tensor flows from the root along the ring; each rank forwards what it received.</item>
/// </list>
/// </summary>
internal readonly struct RingSchedule
{
    public RingSchedule(RingAlgorithm algorithm, int rank, int worldSize, long bytes, int elementSize, int root = 0)
    {
        Algorithm = algorithm;
        Rank = rank;
        WorldSize = worldSize;
        Bytes = bytes;
        ElementSize = elementSize;
        Root = root;
    }

    public RingAlgorithm Algorithm { get; }
    public int Rank { get; }
    public int WorldSize { get; }
    /// <summary>AllReduce and Broadcast: the tensor's bytes; AllGather: one rank's block.</summary>
    public long Bytes { get; }
    public int ElementSize { get; }
    public int Root { get; }

    private int BroadcastPosition => (Rank - Root + WorldSize) % WorldSize;

    public int SendCount => Algorithm switch
    {
        RingAlgorithm.AllReduce => 2 * (WorldSize - 1),
        RingAlgorithm.AllGather => WorldSize - 1,
        _ => BroadcastPosition == WorldSize - 1 ? 0 : 1,
    };

    public int ReceiveCount => Algorithm switch
    {
        RingAlgorithm.AllReduce => 2 * (WorldSize - 1),
        RingAlgorithm.AllGather => WorldSize - 1,
        _ => BroadcastPosition == 0 ? 0 : 1,
    };

    /// <summary>The receive that send <paramref name="t"/> forwards, or -1 when its data is local from the start.</summary>
    public int SendDependency(int t)
    {
        var dependency = Algorithm == RingAlgorithm.Broadcast ? t : t - 1;
        return dependency < 0 || dependency >= ReceiveCount ? -1 : dependency;
    }

    public bool ReceiveReduces(int t) => Algorithm == RingAlgorithm.AllReduce && t < WorldSize - 1;

    /// <summary>The receive after which this rank's owned chunk holds the complete reduction.</summary>
    public bool IsFinalReduction(int t) => Algorithm == RingAlgorithm.AllReduce && t == WorldSize - 2;

    /// <summary>Byte range of send <paramref name="t"/> within the data buffer.</summary>
    public (long Offset, long Length) Send(int t) => Algorithm switch
    {
        RingAlgorithm.AllReduce => Chunk(t < WorldSize - 1 ? Rank - t : Rank + 1 - (t - (WorldSize - 1))),
        RingAlgorithm.AllGather => Block(Rank - t),
        _ => (0, Bytes),
    };

    /// <summary>Byte range of receive <paramref name="t"/> within the data buffer.</summary>
    public (long Offset, long Length) Receive(int t) => Algorithm switch
    {
        RingAlgorithm.AllReduce => Chunk(t < WorldSize - 1 ? Rank - t - 1 : Rank - (t - (WorldSize - 1))),
        RingAlgorithm.AllGather => Block(Rank - t - 1),
        _ => (0, Bytes),
    };

    private (long Offset, long Length) Block(int block) => (Mod(block) * Bytes, Bytes);

    private (long Offset, long Length) Chunk(int chunk)
    {
        var (start, count) = ChunkElements(Bytes / ElementSize, WorldSize, Mod(chunk));
        return (start * ElementSize, count * ElementSize);
    }

    private int Mod(int value) => ((value % WorldSize) + WorldSize) % WorldSize;

    /// <summary>The elements of chunk <paramref name="chunk"/> when <paramref name="elements"/> are split into
    /// <paramref name="worldSize"/> contiguous chunks, the first (elements mod worldSize) one element longer.</summary>
    public static (long Start, long Count) ChunkElements(long elements, int worldSize, int chunk)
    {
        var size = elements / worldSize;
        var remainder = elements % worldSize;
        return (chunk * size + Math.Min(chunk, remainder), size + (chunk < remainder ? 1 : 0));
    }
}

internal enum RingAlgorithm : byte
{
    AllReduce,
    AllGather,
    Broadcast,
}
