using TorchSharp;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// An asynchronous collective waiting for the CPU group's worker. It holds its own references to the tensors
/// (aliases), so the memory stays alive until the collective is done even if the caller drops its tensors.
/// </summary>
internal sealed class PendingCollective(CollectiveKind kind, torch.Tensor tensor, torch.Tensor? input, ReduceOp op, int root) : IDisposable
{
    public CollectiveKind Kind { get; } = kind;
    public torch.Tensor Tensor { get; } = tensor;
    public torch.Tensor? Input { get; } = input;
    public ReduceOp Op { get; } = op;
    public int Root { get; } = root;
    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        Tensor.Dispose();
        Input?.Dispose();
    }
}
