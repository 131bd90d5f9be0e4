using Trainer.Data;

namespace Trainer.Distributed;

/// <summary>
/// torch.utils.data.DistributedSampler: every rank shuffles with the same seed + epoch, pads the list by
/// repeating its head up to a multiple of the number of replicas (or drops the tail with dropLast), and takes
/// the strided slice indices[rank::numReplicas], so the ranks see disjoint parts that cover the dataset.
/// </summary>
internal sealed class DistributedSampler : ISampler
{
    private readonly int _datasetLength;
    private readonly bool _shuffle;
    private readonly int _seed;
    private readonly bool _dropLast;
    private int _epoch;

    public DistributedSampler(int datasetLength, int numReplicas, int rank, bool shuffle = true, int seed = 0, bool dropLast = false)
    {
        if (datasetLength < 0) throw new ArgumentOutOfRangeException(nameof(datasetLength), datasetLength, "The dataset length must be 0 or more.");
        if (numReplicas < 1) throw new ArgumentOutOfRangeException(nameof(numReplicas), numReplicas, "numReplicas must be 1 or more.");
        if (rank < 0 || rank >= numReplicas)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Invalid rank {rank}, rank should be in the interval [0, {numReplicas - 1}].");
        _datasetLength = datasetLength;
        NumReplicas = numReplicas;
        Rank = rank;
        _shuffle = shuffle;
        _seed = seed;
        _dropLast = dropLast;
        NumSamples = dropLast && datasetLength % numReplicas != 0
            ? (int)Math.Ceiling((datasetLength - numReplicas) / (double)numReplicas)
            : (int)Math.Ceiling(datasetLength / (double)numReplicas);
        TotalSize = NumSamples * numReplicas;
    }

    public int NumReplicas { get; }
    public int Rank { get; }

    /// <summary>Indices per rank per epoch.</summary>
    public int NumSamples { get; }

    /// <summary>NumSamples × NumReplicas: the padded (or trimmed) length of the shared list.</summary>
    public int TotalSize { get; }

    public int Epoch => _epoch;

    public int Count => NumSamples;

    /// <summary>This rank's k-th index sits at position Rank + k·NumReplicas of the shared list; positions from the dataset length on are padding.</summary>
    public int RealCount => Rank >= _datasetLength ? 0 : Math.Min(NumSamples, (_datasetLength - Rank + NumReplicas - 1) / NumReplicas);

    public void SetEpoch(int epoch) => _epoch = epoch;

    public IReadOnlyList<int> Indices()
    {
        var indices = _shuffle
            ? RandomSampler.Permutation(_datasetLength, _seed + (long)_epoch)
            : [.. Enumerable.Range(0, _datasetLength)];
        var padded = new int[TotalSize];
        if (!_dropLast)
        {
            indices.AsSpan().CopyTo(padded);
            for (var i = _datasetLength; i < TotalSize; i++)
                padded[i] = indices[(i - _datasetLength) % _datasetLength];
        }
        else
        {
            indices.AsSpan(0, TotalSize).CopyTo(padded);
        }
        var mine = new int[NumSamples];
        for (var k = 0; k < NumSamples; k++)
            mine[k] = padded[Rank + k * NumReplicas];
        return mine;
    }
}
