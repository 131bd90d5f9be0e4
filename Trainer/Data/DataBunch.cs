namespace Trainer.Data;

/// <summary>
/// fastai's DataBunch: the training and validation sets of a run. <see cref="LoadAsync"/> finds them by
/// name: "cifar10" (binary batches from --data, else the cache, else downloaded), "folder" (fastai's PNG
/// folders under --data), "synthetic" (generated), or "auto" (cifar10 where it can be had, else synthetic, with
/// <see cref="Fallback"/> saying why).
/// </summary>
internal sealed record DataBunch(ImageDataset Train, ImageDataset Valid)
{
    /// <summary>The dataset actually loaded: "auto" resolves to cifar10 or synthetic.</summary>
    public string Name { get; init; } = "";

    /// <summary>Why "auto" fell back to the synthetic dataset; null when it did not.</summary>
    public string? Fallback { get; init; }

    public const int SyntheticTrainSize = 50_000;
    public const int SyntheticValidSize = 10_000;

    public static async Task<DataBunch> LoadAsync(string dataset, string? data, string? dataUrl, int? limitTrain, int? limitValid, int seed,
        IProgress<DownloadProgress>? downloadProgress = null, CancellationToken cancellationToken = default)
    {
        if (dataset == "auto")
        {
            try
            {
                return await LoadAsync("cifar10", data, dataUrl, limitTrain, limitValid, seed, downloadProgress, cancellationToken);
            }
            catch (IOException e)
            {
                return await LoadAsync("synthetic", null, null, limitTrain, limitValid, seed, null, cancellationToken) with { Fallback = e.Message };
            }
        }
        var bunch = dataset switch
        {
            // Like CIFAR-10, the synthetic set has 50,000 + 10,000 images; a larger limit takes them all.
            "synthetic" => new DataBunch(
                SyntheticDataset.Create(Math.Min(limitTrain ?? SyntheticTrainSize, SyntheticTrainSize), seed, "train"),
                SyntheticDataset.Create(Math.Min(limitValid ?? SyntheticValidSize, SyntheticValidSize), seed + 1, "valid")),
            "folder" => FromFolder(data ?? throw new DirectoryNotFoundException("--dataset folder needs --data PATH (train/<class>/*.png and test/<class>/*.png).")),
            "cifar10" => FromCifar10Binary(data ?? await new Cifar10Download(Cifar10Download.DefaultCacheDirectory(), dataUrl ?? Cifar10Download.BaseUrlFromEnvironment())
                .EnsureAsync(downloadProgress, cancellationToken)),
            _ => throw new ArgumentException($"--dataset {dataset}: unknown; use auto, cifar10, folder or synthetic."),
        };
        return new DataBunch(
            limitTrain is { } t ? bunch.Train.Take(t, seed) : bunch.Train,
            limitValid is { } v ? bunch.Valid.Take(v, seed) : bunch.Valid) { Name = dataset };
    }

    private static DataBunch FromFolder(string root)
    {
        var (train, valid) = ImageFolder.Load(root);
        return new DataBunch(train, valid);
    }

    private static DataBunch FromCifar10Binary(string path)
    {
        var directory = Cifar10Binary.FindBatchesDirectory(path)
            ?? throw new FileNotFoundException($"--data {path}: no CIFAR-10 binary files there ({string.Join(", ", Cifar10Binary.TrainFiles)}, {Cifar10Binary.TestFile}); point --data at the extracted {Cifar10Binary.FolderName} folder, use --dataset folder for PNG folders, or drop --data to download.");
        var (train, valid) = Cifar10Binary.Load(directory);
        return new DataBunch(train, valid);
    }
}
