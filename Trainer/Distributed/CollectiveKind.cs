namespace Trainer.Distributed;

/// <summary>The collectives a <see cref="ProcessGroup"/> runs (also the CPU ring's wire tag, hence the fixed values).</summary>
public enum CollectiveKind : byte
{
    AllReduce = 1,
    Broadcast = 2,
    AllGather = 3,
    Barrier = 4,
}
