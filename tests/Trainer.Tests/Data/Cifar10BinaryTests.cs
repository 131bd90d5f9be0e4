using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class Cifar10BinaryTests
{
    [Fact]
    public void Reads_labels_and_planar_pixels_of_every_batch_file()
    {
        using var dir = new TempDirectory();
        CifarFiles.WriteBatches(dir.Path, perBatch: 4, test: 6);

        var (train, valid) = Cifar10Binary.Load(dir.Path);

        Assert.Equal(20, train.Count);
        Assert.Equal(6, valid.Count);
        Assert.Equal(Cifar10Binary.DefaultClasses, train.Classes);
        for (var i = 0; i < train.Count; i++)
        {
            Assert.Equal(i % 10, train.Label(i));
            var image = train.Image(i);
            foreach (var (c, p) in new[] { (0, 0), (0, 1023), (1, 0), (2, 517), (2, 1023) })
                Assert.Equal(CifarFiles.Pixel(i, c, p), image[c * ImageDataset.PlaneSize + p]);
        }
        Assert.Equal(1000 % 10, valid.Label(0));
        Assert.Equal(CifarFiles.Pixel(1005, 1, 7), valid.Image(5)[ImageDataset.PlaneSize + 7]);
    }

    [Fact]
    public void Finds_the_batches_folder_itself_or_below_the_given_path()
    {
        using var dir = new TempDirectory();
        var batches = dir.Combine(Cifar10Binary.FolderName);
        CifarFiles.WriteBatches(batches);

        Assert.Equal(batches, Cifar10Binary.FindBatchesDirectory(dir.Path));
        Assert.Equal(batches, Cifar10Binary.FindBatchesDirectory(batches));
        File.Delete(Path.Combine(batches, Cifar10Binary.TestFile));
        Assert.Null(Cifar10Binary.FindBatchesDirectory(dir.Path));
    }

    [Fact]
    public void A_truncated_file_is_an_error_naming_the_file_and_the_offset()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("data_batch_1.bin");
        File.WriteAllBytes(path, CifarFiles.Records(3)[..(2 * Cifar10Binary.RecordSize + 100)]);

        var error = Assert.Throws<InvalidDataException>(() => Cifar10Binary.Read([path], Cifar10Binary.DefaultClasses));

        Assert.Contains(path, error.Message);
        Assert.Contains($"byte offset {2 * Cifar10Binary.RecordSize}", error.Message);
    }

    [Fact]
    public void A_label_out_of_range_is_an_error_naming_the_file_and_the_offset()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("test_batch.bin");
        var bytes = CifarFiles.Records(3);
        bytes[2 * Cifar10Binary.RecordSize] = 10;
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => Cifar10Binary.Read([path], Cifar10Binary.DefaultClasses));

        Assert.Contains(path, error.Message);
        Assert.Contains("label 10", error.Message);
        Assert.Contains($"byte offset {2 * Cifar10Binary.RecordSize}", error.Message);
    }

    [Fact]
    public void A_missing_batch_file_is_named()
    {
        using var dir = new TempDirectory();
        CifarFiles.WriteBatches(dir.Path);
        File.Delete(dir.Combine("data_batch_3.bin"));

        var error = Assert.Throws<FileNotFoundException>(() => Cifar10Binary.Load(dir.Path));

        Assert.Contains("data_batch_3.bin", error.Message);
    }
}
