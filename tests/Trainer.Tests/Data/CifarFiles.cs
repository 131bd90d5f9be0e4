using System.Formats.Tar;
using System.IO.Compression;
using Trainer.Data;

namespace Trainer.Tests.Data;

/// <summary>Writes small files in CIFAR-10's binary layout, and the tar.gz that wraps them.</summary>
internal static class CifarFiles
{
    /// <summary>Record i: label i mod 10; pixel p of channel c = (i + 3c + p) mod 256.</summary>
    public static byte[] Records(int count, int first = 0)
    {
        var bytes = new byte[count * Cifar10Binary.RecordSize];
        for (var r = 0; r < count; r++)
        {
            var i = first + r;
            var record = bytes.AsSpan(r * Cifar10Binary.RecordSize, Cifar10Binary.RecordSize);
            record[0] = (byte)(i % 10);
            for (var c = 0; c < 3; c++)
                for (var p = 0; p < ImageDataset.PlaneSize; p++)
                    record[1 + c * ImageDataset.PlaneSize + p] = Pixel(i, c, p);
        }
        return bytes;
    }

    public static byte Pixel(int image, int channel, int position) => (byte)((image + 3 * channel + position) % 256);

    /// <summary>data_batch_1..5.bin with <paramref name="perBatch"/> records each and test_batch.bin with <paramref name="test"/>.</summary>
    public static void WriteBatches(string directory, int perBatch = 4, int test = 6)
    {
        Directory.CreateDirectory(directory);
        for (var b = 0; b < 5; b++)
            File.WriteAllBytes(Path.Combine(directory, Cifar10Binary.TrainFiles[b]), Records(perBatch, b * perBatch));
        File.WriteAllBytes(Path.Combine(directory, Cifar10Binary.TestFile), Records(test, 1000));
        File.WriteAllLines(Path.Combine(directory, Cifar10Binary.ClassNamesFile), Cifar10Binary.DefaultClasses);
    }

    /// <summary>cifar-10-binary.tar.gz's layout: cifar-10-batches-bin/ with the batch files.</summary>
    public static byte[] TarGz(int perBatch = 4, int test = 6)
    {
        using var staging = new TempDirectory();
        WriteBatches(staging.Combine(Cifar10Binary.FolderName), perBatch, test);
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
            TarFile.CreateFromDirectory(staging.Path, gzip, includeBaseDirectory: false);
        return output.ToArray();
    }
}
