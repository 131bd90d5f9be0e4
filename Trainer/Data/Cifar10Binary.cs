namespace Trainer.Data;

/// <summary>
/// Reads CIFAR-10's binary layout (cifar-10-binary.tar.gz): data_batch_1..5.bin for training and
/// test_batch.bin for validation, each a run of 3073-byte records (1 label byte, then 1024 R, 1024 G and
/// 1024 B bytes of a row-major 32x32 image), and batches.meta.txt with the class names when present.
/// </summary>
internal static class Cifar10Binary
{
    public const int RecordSize = 1 + ImageDataset.ImageSize;
    public const string FolderName = "cifar-10-batches-bin";
    public const string TestFile = "test_batch.bin";
    public const string ClassNamesFile = "batches.meta.txt";

    public static readonly IReadOnlyList<string> TrainFiles = [.. Enumerable.Range(1, 5).Select(i => $"data_batch_{i}.bin")];

    public static readonly IReadOnlyList<string> DefaultClasses =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>
    /// The folder that holds the batch files: <paramref name="path"/> itself, or its cifar-10-batches-bin
    /// subfolder; null when neither has them all.
    /// </summary>
    public static string? FindBatchesDirectory(string path)
    {
        foreach (var candidate in new[] { path, Path.Combine(path, FolderName) })
            if (TrainFiles.Append(TestFile).All(f => File.Exists(Path.Combine(candidate, f))))
                return candidate;
        return null;
    }

    /// <summary>The training (data_batch_1..5) and validation (test_batch) sets of the folder <paramref name="directory"/>.</summary>
    public static (ImageDataset Train, ImageDataset Valid) Load(string directory)
    {
        var classes = ReadClassNames(directory);
        var train = Read([.. TrainFiles.Select(f => Path.Combine(directory, f))], classes);
        var valid = Read([Path.Combine(directory, TestFile)], classes);
        return (train, valid);
    }

    /// <summary>Concatenates the records of <paramref name="paths"/>; throws <see cref="InvalidDataException"/> naming the file and byte offset of a truncated record or a label outside the classes.</summary>
    public static ImageDataset Read(IReadOnlyList<string> paths, IReadOnlyList<string> classes)
    {
        var files = paths.Select(p => (Path: p, Length: LengthOf(p))).ToArray();
        foreach (var (path, length) in files)
            if (length % RecordSize != 0)
                throw new InvalidDataException(
                    $"{path}: truncated or corrupt: {length} bytes is not a whole number of {RecordSize}-byte records; the record at byte offset {length / RecordSize * RecordSize} is incomplete. Download the data again.");

        var count = files.Sum(f => f.Length / RecordSize);
        var pixels = new byte[count * ImageDataset.ImageSize];
        var labels = new int[count];
        var record = new byte[RecordSize];
        var index = 0;
        foreach (var (path, _) in files)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            long offset = 0;
            while (true)
            {
                var read = stream.ReadAtLeast(record, RecordSize, throwOnEndOfStream: false);
                if (read == 0) break;
                if (read < RecordSize)
                    throw new InvalidDataException($"{path}: truncated: the record at byte offset {offset} has only {read} of {RecordSize} bytes.");
                var label = record[0];
                if (label >= classes.Count)
                    throw new InvalidDataException($"{path}: label {label} at byte offset {offset} is outside 0..{classes.Count - 1}; the file is corrupt or not CIFAR-10.");
                labels[index] = label;
                record.AsSpan(1).CopyTo(pixels.AsSpan(index * ImageDataset.ImageSize, ImageDataset.ImageSize));
                index++;
                offset += RecordSize;
            }
        }
        var source = paths.Count == 1 ? paths[0] : $"{Path.GetDirectoryName(paths[0])} ({string.Join(", ", paths.Select(Path.GetFileName))})";
        return new ImageDataset(pixels, labels, classes, source);
    }

    private static long LengthOf(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new FileNotFoundException($"{path} is missing: a CIFAR-10 binary folder needs {string.Join(", ", TrainFiles)} and {TestFile}.", path);
        return info.Length;
    }

    private static IReadOnlyList<string> ReadClassNames(string directory)
    {
        var path = Path.Combine(directory, ClassNamesFile);
        if (!File.Exists(path)) return DefaultClasses;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length == DefaultClasses.Count ? names : DefaultClasses;
    }
}
