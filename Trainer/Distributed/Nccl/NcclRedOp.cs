namespace Trainer.Distributed.Nccl;

/// <summary>nccl.h's ncclRedOp_t built-in operations.</summary>
internal enum NcclRedOp
{
    Sum = 0,
    Prod = 1,
    Max = 2,
    Min = 3,
    /// <summary>Since NCCL 2.10.</summary>
    Avg = 4,
}
