using Trainer.Commands;
using Trainer.Tests.Data;
using Trainer.Training;

namespace Trainer.Tests.Commands;

public sealed class TrainCommandTests
{
    private static (TrainOptions? Options, IReadOnlyList<string> Errors) Bind(params string[] args) =>
        TrainCommand.Bind(TrainCommand.Create().Parse(args));

    [Fact]
    public void The_seed_preset_is_fastais_recipe()
    {
        var (options, errors) = Bind();

        Assert.Empty(errors);
        Assert.Equal(Presets.Seed with { Threads = options!.Threads }, options);
        Assert.Equal((10, 3e-3, 0.4, 10.0, 0.5, 128, 6, "cifar10"),
            (options.Epochs, options.Lr, options.Wd, options.DivFactor, options.PctStart, options.Bs, options.Width, options.Dataset));
    }

    [Fact]
    public void Explicit_options_override_the_preset()
    {
        var (options, errors) = Bind("--preset", "quick", "--dataset", "synthetic", "--epochs", "3", "--lr", "0.01", "--limit-train", "500", "--threads", "2", "--resume");

        Assert.Empty(errors);
        Assert.Equal("quick", options!.Preset);
        Assert.Equal(1, options.Width);
        Assert.Equal(2_000, options.LimitValid);
        Assert.Equal((3, 0.01, 500, 2, "synthetic", true), (options.Epochs, options.Lr, options.LimitTrain, options.Threads, options.Dataset, options.Resume));
    }

    [Fact]
    public void Bad_values_give_one_line_per_option_with_the_fix()
    {
        var (_, errors) = Bind("--epochs", "-1", "--bs", "0", "--dataset", "imagenet", "--pct-start", "2");

        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("--epochs -1"));
        Assert.Contains(errors, e => e.StartsWith("--bs 0"));
        Assert.Contains(errors, e => e.StartsWith("--dataset imagenet") && e.Contains("cifar10, folder, synthetic"));
        Assert.Contains(errors, e => e.StartsWith("--pct-start 2"));
        Assert.All(errors, e => Assert.DoesNotContain('\n', e));
    }

    [Fact]
    public void A_missing_data_path_and_an_unknown_preset_are_errors()
    {
        Assert.Contains(Bind("--dataset", "folder").Errors, e => e.Contains("--data PATH"));
        Assert.Contains(Bind("--data", "/no/such/folder").Errors, e => e.StartsWith("--data /no/such/folder"));
        Assert.Contains(Bind("--preset", "fast").Errors, e => e.StartsWith("--preset fast") && e.Contains("seed, quick"));
    }

    [Fact]
    public async Task Trains_on_cifar_format_files_writes_summary_and_checkpoint_and_resumes()
    {
        using var dir = new TempDirectory();
        var data = dir.Combine("cifar");
        CifarFiles.WriteBatches(data, perBatch: 16, test: 20);
        var (options, errors) = Bind("--preset", "quick", "--dataset", "cifar10", "--data", data, "--bs", "16", "--epochs", "2",
            "--output", dir.Combine("run"), "--threads", "2");
        Assert.Empty(errors);
        var log = new StringWriter();

        var exit = await TrainCommand.RunAsync(options!, log, CancellationToken.None);

        Assert.Equal(0, exit);
        var summary = TrainingSummary.Read(dir.Combine("run", TrainingSummary.FileName));
        Assert.Equal((2, "cifar10", "quick", 1, 80, 20), (summary.Epochs, summary.Dataset, summary.Preset, summary.WorldSize, summary.TrainImages, summary.ValidImages));
        Assert.InRange(summary.Accuracy, 0, 1);
        Assert.True(summary.ImagesPerSecond > 0 && summary.Seconds > 0 && double.IsFinite(summary.ValidLoss) && double.IsFinite(summary.TrainLoss));
        Assert.Equal(2, summary.History.Count);
        Assert.Equal(2, Checkpoint.ReadInfo(dir.Combine("run", Checkpoint.FileName)).Epoch);
        Assert.Contains("epoch 2/2 batch 5/5", log.ToString());
        var json = File.ReadAllText(dir.Combine("run", TrainingSummary.FileName));
        foreach (var field in new[] { "accuracy", "valid_loss", "train_loss", "epochs", "images_per_second", "seconds", "world_size", "dataset", "preset" })
            Assert.Contains($"\"{field}\":", json);

        // Resuming a finished run trains nothing more; resuming under another recipe is refused.
        var resumed = new StringWriter();
        Assert.Equal(0, await TrainCommand.RunAsync(options! with { Resume = true }, resumed, CancellationToken.None));
        Assert.Contains("resumed from", resumed.ToString());
        Assert.Equal(2, TrainingSummary.Read(dir.Combine("run", TrainingSummary.FileName)).Epochs);
        Assert.Equal(2, await TrainCommand.RunAsync(options! with { Resume = true, Lr = 0.1 }, new StringWriter(), CancellationToken.None));
    }
}
