using StbImageWriteSharp;
using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class ImageFolderTests
{
    private static byte[] Interleaved(int seed, int width = 32, int height = 32)
    {
        var rgb = new byte[width * height * 3];
        for (var i = 0; i < rgb.Length; i++) rgb[i] = (byte)(seed * 31 + i * 7);
        return rgb;
    }

    private static void WritePng(string path, byte[] rgb, int width = 32, int height = 32)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        new ImageWriter().WritePng(rgb, width, height, ColorComponents.RedGreenBlue, file);
    }

    [Fact]
    public void Reads_fastai_folders_with_sorted_classes_and_planar_pixels()
    {
        using var dir = new TempDirectory();
        WritePng(dir.Combine("train", "dog", "b.png"), Interleaved(1));
        WritePng(dir.Combine("train", "dog", "a.png"), Interleaved(2));
        WritePng(dir.Combine("train", "cat", "x.png"), Interleaved(3));
        WritePng(dir.Combine("train", "airplane", "y.png"), Interleaved(4));
        WritePng(dir.Combine("test", "cat", "z.png"), Interleaved(5));
        File.WriteAllText(dir.Combine("train", "cat", "notes.txt"), "not an image");

        var (train, valid) = ImageFolder.Load(dir.Path);

        Assert.Equal(["airplane", "cat", "dog"], train.Classes);
        Assert.Equal([0, 1, 2, 2], Enumerable.Range(0, train.Count).Select(train.Label));
        Assert.Equal(1, valid.Count);
        Assert.Equal(1, valid.Label(0));
        // train[2] is dog/a.png (file names sorted): planar R, G, B of the interleaved source.
        var source = Interleaved(2);
        var image = train.Image(2);
        foreach (var p in new[] { 0, 31, 32, 1023 })
            for (var c = 0; c < 3; c++)
                Assert.Equal(source[3 * p + c], image[c * ImageDataset.PlaneSize + p]);
    }

    [Fact]
    public void An_image_of_the_wrong_size_is_named()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("train", "cat", "big.png");
        WritePng(path, Interleaved(1, 40, 30), 40, 30);
        WritePng(dir.Combine("test", "cat", "ok.png"), Interleaved(2));

        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path));

        Assert.Contains(path, error.Message);
        Assert.Contains("40x30", error.Message);
    }

    [Fact]
    public void A_corrupt_image_is_named()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("train", "cat", "broken.png");
        WritePng(path, Interleaved(1));
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..40]);
        WritePng(dir.Combine("test", "cat", "ok.png"), Interleaved(2));

        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path));

        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void A_validation_class_unknown_to_training_is_an_error()
    {
        using var dir = new TempDirectory();
        WritePng(dir.Combine("train", "cat", "a.png"), Interleaved(1));
        WritePng(dir.Combine("test", "dog", "b.png"), Interleaved(2));

        var error = Assert.Throws<InvalidDataException>(() => ImageFolder.Load(dir.Path));

        Assert.Contains("'dog'", error.Message);
    }

    [Fact]
    public void A_missing_test_folder_is_named()
    {
        using var dir = new TempDirectory();
        WritePng(dir.Combine("train", "cat", "a.png"), Interleaved(1));

        var error = Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Load(dir.Path));

        Assert.Contains(dir.Combine("test"), error.Message);
    }
}
