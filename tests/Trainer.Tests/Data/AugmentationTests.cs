using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class AugmentationTests
{
    /// <summary>An image whose byte at (c, y, x) encodes its own position, so a transform's output tells where each value came from.</summary>
    private static byte[] Coordinates()
    {
        var image = new byte[ImageDataset.ImageSize];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < 32; y++)
                for (var x = 0; x < 32; x++)
                    image[c * 1024 + y * 32 + x] = (byte)(c == 0 ? x : c == 1 ? y : x + y);
        return image;
    }

    /// <summary>Inverts normalization back to the byte value.</summary>
    private static int Byte(float value, int channel) =>
        (int)Math.Round((value * CifarStats.Std[channel] + CifarStats.Mean[channel]) * 255);

    [Fact]
    public void Validation_only_normalizes_with_cifar_stats()
    {
        var image = new byte[ImageDataset.ImageSize];
        image[0] = 255;
        image[1024 + 5] = 0;
        image[2048 + 1023] = 128;
        var output = new float[ImageDataset.ImageSize];
        var rng = new SplitMix64(1);

        Augmentation.Valid().Apply(image, output, ref rng);

        Assert.Equal((1f - 0.491f) / 0.247f, output[0], 5);
        Assert.Equal((0f - 0.482f) / 0.243f, output[1024 + 5], 5);
        Assert.Equal((128 / 255f - 0.447f) / 0.261f, output[2048 + 1023], 5);
        Assert.Equal((0f - 0.491f) / 0.247f, output[1], 5);
    }

    [Fact]
    public void Reflection_padding_mirrors_without_repeating_the_edge()
    {
        var output = new float[ImageDataset.ImageSize];
        // Offset (0, 0) starts 4 pixels outside the image: column 0 of the crop is source column 4, column 3 is 1, column 4 is 0.
        new Augmentation().Apply(Coordinates(), output, row: 0, column: 0, flip: false);
        Assert.Equal([4, 3, 2, 1, 0, 1, 2], Enumerable.Range(0, 7).Select(x => Byte(output[x], 0)));
        Assert.Equal([4, 3, 2, 1, 0, 1], Enumerable.Range(0, 6).Select(y => Byte(output[1024 + y * 32], 1)));

        // Offset (8, 8) ends 4 pixels past the image: crop column 31 is source column 31 - 4 + 8 = 35 -> 2·31 - 35 = 27.
        new Augmentation().Apply(Coordinates(), output, row: 8, column: 8, flip: false);
        Assert.Equal([30, 31, 30, 29, 28, 27], Enumerable.Range(26, 6).Select(x => Byte(output[x], 0)));
        Assert.Equal([30, 31, 30, 29, 28, 27], Enumerable.Range(26, 6).Select(y => Byte(output[1024 + y * 32], 1)));
    }

    [Fact]
    public void Centre_crop_without_flip_is_the_identity_and_flip_mirrors_columns()
    {
        var image = Coordinates();
        var output = new float[ImageDataset.ImageSize];
        var augmentation = new Augmentation();

        augmentation.Apply(image, output, row: 4, column: 4, flip: false);
        Assert.All(Enumerable.Range(0, ImageDataset.ImageSize), i => Assert.Equal(image[i], Byte(output[i], i / 1024)));

        augmentation.Apply(image, output, row: 4, column: 4, flip: true);
        for (var y = 0; y < 32; y++)
            for (var x = 0; x < 32; x++)
                Assert.Equal(image[2048 + y * 32 + 31 - x], Byte(output[2048 + y * 32 + x], 2));
    }

    [Fact]
    public void Flips_half_the_images_and_draws_crop_offsets_uniformly_from_0_to_8()
    {
        var augmentation = Augmentation.Train();
        var rng = new SplitMix64(42);
        const int draws = 45_000;
        var rows = new int[9];
        var columns = new int[9];
        var flips = 0;
        for (var i = 0; i < draws; i++)
        {
            var (row, column, flip) = augmentation.Sample(ref rng);
            rows[row]++;
            columns[column]++;
            if (flip) flips++;
        }

        // Flip rate within 4 standard deviations of 0.5 (sd = 0.5/sqrt(n) ≈ 0.0024).
        Assert.InRange(flips / (double)draws, 0.49, 0.51);
        // Each of the 9 offsets appears 5,000 times on average (sd ≈ 67): all present, none far off.
        Assert.All(rows, n => Assert.InRange(n, 4_700, 5_300));
        Assert.All(columns, n => Assert.InRange(n, 4_700, 5_300));
        Assert.Equal(8, augmentation.MaxOffset);
    }

    [Fact]
    public void The_same_seed_gives_the_same_augmentation()
    {
        var image = Coordinates();
        var a = new float[ImageDataset.ImageSize];
        var b = new float[ImageDataset.ImageSize];
        var rngA = SplitMix64.For(7, 3, 11);
        var rngB = SplitMix64.For(7, 3, 11);
        for (var i = 0; i < 20; i++)
        {
            Augmentation.Train().Apply(image, a, ref rngA);
            Augmentation.Train().Apply(image, b, ref rngB);
            Assert.Equal(a, b);
        }
    }
}
