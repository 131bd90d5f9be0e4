namespace Trainer.Data;

/// <summary>
/// A deterministic, learnable stand-in for CIFAR-10 for offline runs and tests. Classes come in pairs that
/// share a colour and differ only in stripe orientation (horizontal or vertical, which survives flips and
/// crops), under per-pixel noise and a per-image brightness shift: colour alone gives 20%, so accuracy well
/// above that shows the network learned shapes too.
/// </summary>
internal static class SyntheticDataset
{
    private static readonly string[] ColourNames = ["red", "green", "blue", "yellow", "purple"];

    public static readonly IReadOnlyList<string> Classes =
        [.. Enumerable.Range(0, 10).Select(c => $"{(c % 2 == 0 ? "horizontal" : "vertical")}-{ColourNames[c / 2]}")];

    private static readonly byte[][] Colours =
    [
        [170, 70, 70], [70, 160, 80], [70, 90, 170], [170, 160, 70], [140, 70, 160],
    ];

    /// <summary><paramref name="count"/> images; image i depends only on (<paramref name="seed"/>, i), its class is i mod 10.</summary>
    public static ImageDataset Create(int count, int seed, string name)
    {
        var pixels = new byte[(long)count * ImageDataset.ImageSize];
        var labels = new int[count];
        Parallel.For(0, count, i =>
        {
            labels[i] = i % Classes.Count;
            Draw(labels[i], SplitMix64.For(seed, 0x5EED, i), pixels.AsSpan(i * ImageDataset.ImageSize, ImageDataset.ImageSize));
        });
        return new ImageDataset(pixels, labels, Classes, $"synthetic {name} ({count} images, seed {seed})");
    }

    private static void Draw(int label, SplitMix64 rng, Span<byte> image)
    {
        var colour = Colours[label / 2];
        var horizontal = label % 2 == 0;
        var period = 4 + rng.NextInt(5);
        var phase = rng.NextInt(period);
        var brightness = rng.NextInt(61) - 30;
        for (var y = 0; y < ImageDataset.Height; y++)
            for (var x = 0; x < ImageDataset.Width; x++)
            {
                var along = (horizontal ? y : x) + phase;
                var stripe = along % period < period / 2 ? 35 : -35;
                for (var c = 0; c < ImageDataset.Channels; c++)
                {
                    var noise = rng.NextInt(121) - 60;
                    var value = colour[c] + stripe + brightness + noise;
                    image[c * ImageDataset.PlaneSize + y * ImageDataset.Width + x] = (byte)Math.Clamp(value, 0, 255);
                }
            }
    }
}
