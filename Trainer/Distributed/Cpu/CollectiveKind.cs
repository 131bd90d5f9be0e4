namespace Trainer.Distributed.Cpu;

internal enum CollectiveKind : byte
{
    AllReduce = 1,
    Broadcast = 2,
    AllGather = 3,
    Barrier = 4,
}
