namespace Trainer.Data;

/// <summary>0, 1, ..., length-1 every epoch (PyTorch's SequentialSampler), for validation on one rank.</summary>
internal sealed class SequentialSampler(int length) : ISampler
{
    private readonly int[] _indices = [.. Enumerable.Range(0, length)];

    public int Count => _indices.Length;
    public int RealCount => _indices.Length;

    public void SetEpoch(int epoch) { }

    public IReadOnlyList<int> Indices() => _indices;
}
