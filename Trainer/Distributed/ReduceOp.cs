namespace Trainer.Distributed;

/// <summary>How <see cref="ProcessGroup.AllReduce"/> combines the ranks' tensors (torch.distributed.ReduceOp).</summary>
public enum ReduceOp
{
    Sum,
    /// <summary>Sum divided by the world size; integer tensors divide with truncation toward zero, like NCCL.</summary>
    Avg,
    Max,
    Min,
}
