using Trainer.Runtime;
using Trainer.Commands;
using Trainer.Tests.Training;
using Trainer.Training;

namespace Trainer.Tests.Faults;

/// <summary>Checkpoints are rotated atomically; a damaged one is detected, the previous one used with a warning, never loaded silently.</summary>
[Collection("Faults")]
public sealed class CheckpointRecoveryTests
{
    [Fact]
    public void Saving_keeps_the_replaced_checkpoint_as_the_previous_one_and_leaves_no_temporary_files()
    {
        using var dir = new TempDirectory();
        var files = new CheckpointFiles(dir.Path);
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);

        files.Save(learner, "a");
        learner.Epoch = 1;
        files.Save(learner, "b");
        learner.Epoch = 2;
        files.Save(learner, "c");

        Assert.Equal([files.Latest, files.Previous], Directory.GetFiles(dir.Path).Order());
        Assert.Equal((2, "c"), (Checkpoint.ReadInfo(files.Latest).Epoch, Checkpoint.ReadInfo(files.Latest).Recipe));
        Assert.Equal((1, "b"), (Checkpoint.ReadInfo(files.Previous).Epoch, Checkpoint.ReadInfo(files.Previous).Recipe));
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("header")]
    [InlineData("empty")]
    [InlineData("missing")]
    public void A_damaged_or_missing_latest_checkpoint_falls_back_to_the_previous_one_with_a_warning(string damage)
    {
        using var dir = new TempDirectory();
        var files = new CheckpointFiles(dir.Path);
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);
        learner.Epoch = 1;
        files.Save(learner, "recipe");
        learner.Epoch = 2;
        files.Save(learner, "recipe");
        Damage(files.Latest, damage);
        var warnings = new List<string>();

        var found = files.FindNewestIntact(warnings.Add);

        Assert.Equal(files.Previous, found?.Path);
        Assert.Equal(1, found?.Info.Epoch);
        var warning = Assert.Single(warnings);
        Assert.Contains(files.Latest, warning);
        Assert.Contains($"Resuming from the previous checkpoint {files.Previous} (epoch 1", warning);
        Assert.DoesNotContain('\n', warning);
    }

    [Fact]
    public void When_every_checkpoint_is_damaged_resume_stops_with_exit_code_2_instead_of_starting_over()
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Combine("run"));
        Assert.Equal(0, RunInProcess(options));
        var files = new CheckpointFiles(options.Output);
        Damage(files.Latest, "truncate");
        Damage(files.Previous, "flip");
        var before = File.ReadAllBytes(files.Latest);

        var error = new StringWriter();
        var exit = RunInProcess(options with { Resume = true }, error);

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        Assert.Contains($"no intact checkpoint in {options.Output}", error.ToString());
        Assert.Equal(before, File.ReadAllBytes(files.Latest));
    }

    [Fact]
    public void Resume_after_a_damaged_latest_checkpoint_continues_from_the_previous_one_and_finishes()
    {
        using var dir = new TempDirectory();
        var options = Options(dir.Combine("run"));
        Assert.Equal(0, RunInProcess(options));
        var files = new CheckpointFiles(options.Output);
        Damage(files.Latest, "flip");

        var log = new StringWriter();
        var error = new StringWriter();
        var exit = RunInProcess(options with { Resume = true }, error, log);

        Assert.Equal(0, exit);
        Assert.Contains("warning: ", error.ToString());
        Assert.Contains($"resumed from {files.Previous}: 1 of 2 epochs done", log.ToString());
        Assert.Equal(2, Checkpoint.ReadInfo(files.Latest).Epoch);
    }

    [Fact]
    public void Stale_temporary_files_of_a_killed_writer_are_removed_at_the_next_resume()
    {
        using var dir = new TempDirectory();
        var files = new CheckpointFiles(dir.Path);
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);
        files.Save(learner, "recipe");
        var stale = dir.Combine(".checkpoint.ckpt.0123456789abcdef.tmp");
        File.WriteAllBytes(stale, new byte[100]);

        Assert.NotNull(files.FindNewestIntact(_ => { }));

        Assert.False(File.Exists(stale));
    }

    [Fact]
    public void A_checkpoint_saved_mid_epoch_resumes_at_the_next_batch_bit_exactly()
    {
        using var dir = new TempDirectory();
        var files = new CheckpointFiles(dir.Path);
        static FitResult Fit(Learner learner) => learner.FitOneCycle(epochs: 2, maxLr: 3e-3, wd: 0.4, divFactor: 10, pctStart: 0.5);

        using var straight = TinyLearner.Create(trainImages: 160, validImages: 32, seed: 5);
        Fit(straight);

        // Checkpoints after steps 2 and 4 of epoch 0 (5 batches), then the run dies after step 7, in epoch 1.
        using var first = TinyLearner.Create(trainImages: 160, validImages: 32, seed: 5);
        first.Callbacks.Add(new SaveCheckpointCallback(first, files, "recipe", everySteps: 2));
        first.Callbacks.Add(new StopAfterStep(first, 7));
        Fit(first);
        var saved = Checkpoint.ReadInfo(files.Latest);
        Assert.Equal((1, 6), (saved.Epoch, saved.Step)); // step 6 is batch 1 of epoch 1

        using var resumed = TinyLearner.Create(trainImages: 160, validImages: 32, seed: 5, initSeed: 99);
        Checkpoint.Load(files.Latest, resumed);
        var steps = new StepRecorder();
        resumed.Callbacks.Add(steps);
        Fit(resumed);

        Assert.Equal([(1, 1), (1, 2), (1, 3), (1, 4)], steps.Batches);
        Assert.Equal(10, resumed.Step);
        Assert.Equal(TinyLearner.Parameters(straight), TinyLearner.Parameters(resumed));
        Assert.Equal(straight.TrainLoss.Smooth, resumed.TrainLoss.Smooth);
    }

    internal static void Damage(string path, string how)
    {
        var bytes = File.ReadAllBytes(path);
        switch (how)
        {
            case "flip": bytes[bytes.Length / 2] ^= 0x40; break;
            case "truncate": bytes = bytes[..(bytes.Length / 2)]; break;
            case "header": bytes[0] = (byte)'X'; break;
            case "empty": bytes = []; break;
            case "missing": File.Delete(path); return;
        }
        File.WriteAllBytes(path, bytes);
    }

    private static TrainOptions Options(string output)
    {
        var (options, errors) = InProcessTrain.Bind(InProcessTrain.Tiny(output));
        Assert.Empty(errors);
        return options!;
    }

    private static int RunInProcess(TrainOptions options, StringWriter? error = null, StringWriter? log = null)
    {
        var (exitCode, output, errors) = InProcessTrain.Run(options);
        error?.Write(errors);
        log?.Write(output);
        return exitCode;
    }

    private sealed class StopAfterStep(Learner learner, int step) : ILearnerCallback
    {
        public void OnBatchEnd(BatchEnd batch)
        {
            if (batch.Step == step) learner.RequestStop();
        }
    }

    private sealed class StepRecorder : ILearnerCallback
    {
        public List<(int Epoch, int Batch)> Batches { get; } = [];

        public void OnBatchEnd(BatchEnd batch) => Batches.Add((batch.Epoch, batch.Batch));
    }
}
