using TorchSharp;

namespace Trainer.Distributed;

/// <summary>
/// One collective as a backend receives it, already validated: <see cref="Tensor"/> holds the data (all-gather's
/// output; none for a barrier), <see cref="Input"/> all-gather's own part.
/// </summary>
internal readonly record struct Collective(CollectiveKind Kind, torch.Tensor? Tensor, torch.Tensor? Input = null, ReduceOp Op = ReduceOp.Sum, int Root = 0)
{
    public static Collective Barrier => new(CollectiveKind.Barrier, null);

    /// <summary>The tensor whose size and dtype the collective moves: all-gather's input, else the data.</summary>
    public torch.Tensor? Described => Input ?? Tensor;

    /// <summary>Bytes each rank contributes.</summary>
    public long Bytes => Described is { } t ? t.numel() * t.element_size() : 0;
}
