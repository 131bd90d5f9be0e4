using StbImageSharp;

namespace Trainer.Data;

/// <summary>
/// Reads fastai's folder layout (URLs.CIFAR): train/&lt;class&gt;/*.png and test/&lt;class&gt;/*.png, the classes being
/// the training folder's subfolder names sorted ordinally, as ImageDataBunch.from_folder(path, valid='test') does.
/// </summary>
internal static class ImageFolder
{
    public const string TrainFolder = "train";
    public const string ValidFolder = "test";

    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp"];

    public static bool Looks(string root) =>
        Directory.Exists(Path.Combine(root, TrainFolder)) && Directory.Exists(Path.Combine(root, ValidFolder));

    public static (ImageDataset Train, ImageDataset Valid) Load(string root)
    {
        var trainDir = Path.Combine(root, TrainFolder);
        var validDir = Path.Combine(root, ValidFolder);
        foreach (var dir in new[] { trainDir, validDir })
            if (!Directory.Exists(dir))
                throw new DirectoryNotFoundException($"{dir} is missing: an image folder dataset needs {TrainFolder}/<class>/*.png and {ValidFolder}/<class>/*.png under {root}.");
        var classes = Directory.GetDirectories(trainDir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0)
            throw new InvalidDataException($"{trainDir} has no class folders: put each class's images in {trainDir}/<class>/.");
        return (Read(trainDir, classes), Read(validDir, classes));
    }

    /// <summary>Decodes every image of <paramref name="directory"/>/&lt;class&gt;/ for the given classes, in class then file-name order.</summary>
    public static ImageDataset Read(string directory, IReadOnlyList<string> classes)
    {
        foreach (var sub in Directory.GetDirectories(directory).Select(Path.GetFileName))
            if (!classes.Contains(sub))
                throw new InvalidDataException($"{Path.Combine(directory, sub!)}: class '{sub}' is not among the training classes ({string.Join(", ", classes)}).");

        var files = new List<(string Path, int Label)>();
        for (var label = 0; label < classes.Count; label++)
        {
            var classDir = Path.Combine(directory, classes[label]);
            if (!Directory.Exists(classDir)) continue;
            files.AddRange(Directory.EnumerateFiles(classDir)
                .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal)
                .Select(f => (f, label)));
        }
        if (files.Count == 0)
            throw new InvalidDataException($"{directory} has no images: expected {directory}/<class>/*.png.");

        var pixels = new byte[(long)files.Count * ImageDataset.ImageSize];
        var labels = files.Select(f => f.Label).ToArray();
        try
        {
            Parallel.For(0, files.Count, i => Decode(files[i].Path, pixels.AsSpan(i * ImageDataset.ImageSize, ImageDataset.ImageSize)));
        }
        catch (AggregateException e)
        {
            // Report the first bad file as such, not wrapped in the parallel loop's exception.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return new ImageDataset(pixels, labels, classes, directory);
    }

    /// <summary>Decodes one 32x32 image into planar RGB.</summary>
    public static void Decode(string path, Span<byte> planar)
    {
        ImageResult image;
        try
        {
            image = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IndexOutOfRangeException or NullReferenceException)
        {
            throw new InvalidDataException($"{path}: not a readable image ({e.Message}).", e);
        }
        if (image.Width != ImageDataset.Width || image.Height != ImageDataset.Height)
            throw new InvalidDataException($"{path}: image is {image.Width}x{image.Height}; CIFAR images must be {ImageDataset.Width}x{ImageDataset.Height}.");
        var rgb = image.Data;
        for (var p = 0; p < ImageDataset.PlaneSize; p++)
        {
            planar[p] = rgb[3 * p];
            planar[ImageDataset.PlaneSize + p] = rgb[3 * p + 1];
            planar[2 * ImageDataset.PlaneSize + p] = rgb[3 * p + 2];
        }
    }
}
