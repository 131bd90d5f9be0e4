namespace Trainer.Training;

/// <summary>The one place that defines defaults: named recipes that explicit options override.</summary>
internal static class Presets
{
    /// <summary>
    /// The seed's recipe exactly: learn.fit_one_cycle(10, 3e-3, wd=0.4, div_factor=10, pct_start=0.5) on
    /// CIFAR-10 with bs=128 and wrn_22 (k = 6).
    /// </summary>
    public static readonly TrainOptions Seed = new()
    {
        Preset = "seed",
        Epochs = 10,
        Lr = 3e-3,
        Wd = 0.4,
        Bs = 128,
        DivFactor = 10,
        PctStart = 0.5,
        Dataset = TrainOptions.Cifar10,
        Width = 6,
        Seed = 0,
        Output = "runs",
        LogEvery = 50,
    };

    /// <summary>A smoke run: k = 1, one epoch, 10,000 training and 2,000 validation images (about a minute on 2 cores).</summary>
    public static readonly TrainOptions Quick = Seed with
    {
        Preset = "quick",
        Epochs = 1,
        Width = 1,
        LimitTrain = 10_000,
        LimitValid = 2_000,
        LogEvery = 10,
    };

    public static readonly IReadOnlyDictionary<string, TrainOptions> All = new Dictionary<string, TrainOptions>
    {
        [Seed.Preset] = Seed,
        [Quick.Preset] = Quick,
    };
}
