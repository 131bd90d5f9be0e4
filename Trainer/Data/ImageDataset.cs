namespace Trainer.Data;

/// <summary>
/// Labelled 32x32 RGB images held in memory as bytes, each image planar (1024 R, then 1024 G, then 1024 B,
/// row-major): the layout of CIFAR-10's binary files, which every reader converts to.
/// </summary>
internal sealed class ImageDataset
{
    public const int Channels = 3;
    public const int Height = 32;
    public const int Width = 32;
    public const int PlaneSize = Height * Width;
    public const int ImageSize = Channels * PlaneSize;

    private readonly byte[] _pixels;
    private readonly int[] _labels;

    public ImageDataset(byte[] pixels, int[] labels, IReadOnlyList<string> classes, string source)
    {
        if (pixels.Length != (long)labels.Length * ImageSize)
            throw new ArgumentException($"{source}: {pixels.Length} pixel bytes do not hold {labels.Length} images of {ImageSize} bytes.", nameof(pixels));
        foreach (var label in labels)
            if ((uint)label >= (uint)classes.Count)
                throw new ArgumentException($"{source}: label {label} is outside 0..{classes.Count - 1}.", nameof(labels));
        _pixels = pixels;
        _labels = labels;
        Classes = classes;
        Source = source;
    }

    public int Count => _labels.Length;

    public IReadOnlyList<string> Classes { get; }

    /// <summary>Where the images came from (a path or a description), for messages.</summary>
    public string Source { get; }

    public ReadOnlySpan<byte> Image(int index) => _pixels.AsSpan(index * ImageSize, ImageSize);

    public int Label(int index) => _labels[index];

    /// <summary>
    /// A random subset of <paramref name="count"/> images (all of them if there are fewer), chosen by
    /// <paramref name="seed"/> and kept in the original order, so a limited run still sees every class.
    /// </summary>
    public ImageDataset Take(int count, int seed)
    {
        if (count >= Count) return this;
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        var chosen = order.AsSpan(0, count);
        chosen.Sort();
        var pixels = new byte[(long)count * ImageSize];
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            Image(chosen[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
            labels[i] = _labels[chosen[i]];
        }
        return new ImageDataset(pixels, labels, Classes, $"{Source} (random {count} of {Count})");
    }
}
