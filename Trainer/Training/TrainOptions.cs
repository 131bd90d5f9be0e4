using System.Text.Json;
using Trainer.Runtime;

namespace Trainer.Training;

/// <summary>
/// Everything `Trainer train` needs, named after fastai's arguments. Defaults come from a preset
/// (<see cref="Presets"/>); options given on the command line override it.
/// </summary>
internal sealed record TrainOptions
{
    public const string Auto = "auto";
    public const string Cifar10 = "cifar10";
    public const string Folder = "folder";
    public const string Synthetic = "synthetic";
    public static readonly IReadOnlyList<string> Datasets = [Auto, Cifar10, Folder, Synthetic];

    public required string Preset { get; init; }
    public required int Epochs { get; init; }
    public required double Lr { get; init; }
    public required double Wd { get; init; }
    public required int Bs { get; init; }
    public required double DivFactor { get; init; }
    public required double PctStart { get; init; }
    public required string Dataset { get; init; }
    public string? Data { get; init; }
    public string? DataUrl { get; init; }
    public required int Width { get; init; }
    public int? LimitTrain { get; init; }
    public int? LimitValid { get; init; }
    public required int Seed { get; init; }
    public required string Output { get; init; }
    public bool Resume { get; init; }
    /// <summary>Torch CPU threads; null: from the environment (<see cref="Distributed.DistributedContract.ThreadsPerRank"/>).</summary>
    public int? Threads { get; init; }
    public required int LogEvery { get; init; }
    /// <summary>auto, cpu or cuda (<see cref="TrainingDevice"/>); not part of the recipe: a checkpoint resumes on any device.</summary>
    public string Device { get; init; } = TrainingDevice.Auto;

    /// <summary>Restarts of the whole group after a failure (torchrun's --max-restarts); 0 = the first failure ends the run.</summary>
    public int MaxRestarts { get; init; } = DefaultMaxRestarts;

    /// <summary>Also checkpoint every N optimizer steps within an epoch; 0 = at epoch ends only.</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>Seconds without progress before a worker counts as hung (see Watchdog.HangWatch); 0 = off.</summary>
    public double HangTimeout { get; init; } = DefaultHangTimeout;

    public const double DefaultHangTimeout = 60;

    public const int DefaultMaxRestarts = Runtime.LaunchContract.DefaultMaxRestarts;
    public const int MaxWidth = 64;
    public const int MaxThreads = Distributed.DistributedContract.MaxThreads;
    public const int MaxMaxRestarts = 1000;

    /// <summary>One line per bad value, naming the option and the fix; empty when all is well.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string message)
        {
            if (!ok) errors.Add(message);
        }
        Check(Epochs >= 1, $"--epochs {Epochs}: must be 1 or more.");
        Check(double.IsFinite(Lr) && Lr > 0, $"--lr {Lr}: must be a positive number, e.g. 3e-3.");
        Check(double.IsFinite(Wd) && Wd >= 0, $"--wd {Wd}: must be 0 or more, e.g. 0.4.");
        Check(Bs >= 1, $"--bs {Bs}: must be 1 or more, e.g. 128.");
        Check(double.IsFinite(DivFactor) && DivFactor > 0, $"--div-factor {DivFactor}: must be a positive number, e.g. 10.");
        Check(PctStart is >= 0 and <= 1, $"--pct-start {PctStart}: must be between 0 and 1, e.g. 0.5.");
        Check(Datasets.Contains(Dataset), $"--dataset {Dataset}: unknown; use one of {string.Join(", ", Datasets)}.");
        Check(Width is >= 1 and <= MaxWidth, $"--width {Width}: must be from 1 to {MaxWidth} (fastai's wrn_22 uses 6; at {MaxWidth} the model has over a billion parameters).");
        Check(LimitTrain is null or >= 1, $"--limit-train {LimitTrain}: must be 1 or more (or leave it out for all images).");
        Check(LimitValid is null or >= 1, $"--limit-valid {LimitValid}: must be 1 or more (or leave it out for all images).");
        Check(Threads is null or (>= 1 and <= MaxThreads), $"--threads {Threads}: must be from 1 to {MaxThreads} (this machine has {Environment.ProcessorCount} cores).");
        Check(MaxRestarts is >= 0 and <= MaxMaxRestarts, $"--max-restarts {MaxRestarts}: must be from 0 (fail at once) to {MaxMaxRestarts}; the default is {DefaultMaxRestarts}.");
        Check(HangTimeout is >= 0 and <= 86400, $"--hang-timeout {HangTimeout}: must be a number of seconds from 0 (off) to 86400; the default is {DefaultHangTimeout}.");
        Check(CheckpointEvery >= 0, $"--checkpoint-every {CheckpointEvery}: must be 0 (at epoch ends only) or a number of optimizer steps, e.g. 500.");
        Check(LogEvery >= 1, $"--log-every {LogEvery}: must be 1 or more.");
        Check(TrainingDevice.Choices.Contains(Device), $"--device {Device}: unknown; use one of {string.Join(", ", TrainingDevice.Choices)}.");
        Check(!string.IsNullOrWhiteSpace(Output), "--output: give a folder for checkpoints and summary.json.");
        if (Dataset == Folder)
            Check(Data is not null, "--dataset folder needs --data PATH: a folder with train/<class>/*.png and test/<class>/*.png.");
        if (Data is not null && Dataset is not Synthetic)
            Check(Directory.Exists(Data), $"--data {Data}: no such folder; point it at the extracted dataset.");
        if (DataUrl is not null)
            Check(Uri.TryCreate(DataUrl, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps),
                $"--data-url {DataUrl}: must be an http(s) URL of the folder that holds cifar-10-binary.tar.gz.");
        if (LimitTrain is { } limit)
            Check(limit >= Bs, $"--limit-train {limit} is smaller than --bs {Bs}: no full training batch; raise --limit-train or lower --bs.");
        return errors;
    }

    /// <summary>The options that decide the result, as JSON: a checkpoint only resumes under the same recipe.</summary>
    public string Recipe() => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["epochs"] = Epochs, ["lr"] = Lr, ["wd"] = Wd, ["bs"] = Bs, ["div-factor"] = DivFactor, ["pct-start"] = PctStart,
        ["dataset"] = Dataset, ["width"] = Width, ["limit-train"] = LimitTrain, ["limit-valid"] = LimitValid, ["seed"] = Seed,
    }, TrainerJson.Default.DictionaryStringObject);

    /// <summary>The first option whose value differs from <paramref name="savedRecipe"/>, as "--name ours (saved theirs)"; null when they agree.</summary>
    public string? RecipeDifference(string savedRecipe)
    {
        var saved = JsonSerializer.Deserialize(savedRecipe, TrainerJson.Default.DictionaryStringJsonElement) ?? [];
        var ours = JsonSerializer.Deserialize(Recipe(), TrainerJson.Default.DictionaryStringJsonElement)!;
        foreach (var (name, value) in ours)
        {
            var theirs = saved.TryGetValue(name, out var t) ? t.GetRawText() : "(none)";
            if (theirs != value.GetRawText())
                return $"--{name} {value.GetRawText()} (the checkpoint has {theirs})";
        }
        return null;
    }
}
