namespace Trainer.Data;

/// <summary>
/// fastai's CIFAR transforms on raw bytes: rand_pad(4, 32) (reflection padding of 4, then a uniformly random
/// 32x32 crop, offsets 0..8), flip_lr(p=0.5), then normalize(cifar_stats), written as floats (pixel / 255)
/// into a planar CHW slot of a batch. Validation only normalizes. (fastai flips before cropping; cropping at
/// offset o then flipping equals flipping then cropping at 2·padding − o, so the distribution is the same.)
/// </summary>
internal sealed class Augmentation
{
    private const int Size = ImageDataset.Width;

    // Per channel, byte value -> (value / 255 - mean) / std: normalization becomes one table lookup.
    private readonly float[][] _normalize;

    public Augmentation(int padding = 4, double flipProbability = 0.5, float[]? mean = null, float[]? std = null, bool augment = true)
    {
        if (padding is < 0 or > Size - 1) throw new ArgumentOutOfRangeException(nameof(padding), padding, $"padding must be 0..{Size - 1}.");
        Padding = padding;
        FlipProbability = flipProbability;
        Augments = augment;
        mean ??= CifarStats.Mean;
        std ??= CifarStats.Std;
        _normalize = [.. Enumerable.Range(0, ImageDataset.Channels).Select(c =>
            Enumerable.Range(0, 256).Select(v => (v / 255f - mean[c]) / std[c]).ToArray())];
    }

    /// <summary>The training pipeline: rand_pad(4, 32), flip_lr(p=0.5), normalize(cifar_stats).</summary>
    public static Augmentation Train() => new();

    /// <summary>The validation pipeline: normalize(cifar_stats) only.</summary>
    public static Augmentation Valid() => new(augment: false);

    public int Padding { get; }
    public double FlipProbability { get; }
    public bool Augments { get; }

    /// <summary>Largest crop offset: the padded image is Size + 2·Padding wide, so offsets run 0..2·Padding.</summary>
    public int MaxOffset => 2 * Padding;

    /// <summary>Draws one image's crop offsets (row, column) and flip.</summary>
    public (int Row, int Column, bool Flip) Sample(ref SplitMix64 rng)
    {
        var row = rng.NextInt(MaxOffset + 1);
        var column = rng.NextInt(MaxOffset + 1);
        var flip = rng.NextDouble() < FlipProbability;
        return (row, column, flip);
    }

    /// <summary>Transforms one planar image into <paramref name="destination"/> (3·32·32 floats).</summary>
    public void Apply(ReadOnlySpan<byte> image, Span<float> destination, ref SplitMix64 rng)
    {
        if (!Augments)
        {
            Apply(image, destination, Padding, Padding, flip: false);
            return;
        }
        var (row, column, flip) = Sample(ref rng);
        Apply(image, destination, row, column, flip);
    }

    /// <summary>
    /// Crops the reflection-padded image at (<paramref name="row"/>, <paramref name="column"/>) of the padded
    /// frame, flips it horizontally when asked, and normalizes. (Padding, Padding) without flip is the identity.
    /// </summary>
    public void Apply(ReadOnlySpan<byte> image, Span<float> destination, int row, int column, bool flip)
    {
        Span<int> sourceColumn = stackalloc int[Size];
        for (var x = 0; x < Size; x++)
            sourceColumn[x] = Reflect((flip ? Size - 1 - x : x) + column - Padding);
        for (var c = 0; c < ImageDataset.Channels; c++)
        {
            var lut = _normalize[c];
            var plane = image.Slice(c * ImageDataset.PlaneSize, ImageDataset.PlaneSize);
            var output = destination.Slice(c * ImageDataset.PlaneSize, ImageDataset.PlaneSize);
            for (var y = 0; y < Size; y++)
            {
                var source = plane.Slice(Reflect(y + row - Padding) * Size, Size);
                var target = output.Slice(y * Size, Size);
                for (var x = 0; x < Size; x++)
                    target[x] = lut[source[sourceColumn[x]]];
            }
        }
    }

    /// <summary>PyTorch's 'reflect' padding: index -1 maps to 1 and Size maps to Size - 2 (the edge is not repeated).</summary>
    public static int Reflect(int index) => index < 0 ? -index : index >= Size ? 2 * (Size - 1) - index : index;
}
