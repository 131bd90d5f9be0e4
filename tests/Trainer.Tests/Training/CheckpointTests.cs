using Trainer.Training;

namespace Trainer.Tests.Training;

public sealed class CheckpointTests
{
    private static FitResult Fit(Learner learner) => learner.FitOneCycle(epochs: 2, maxLr: 3e-3, wd: 0.4, divFactor: 10, pctStart: 0.5);

    [Fact]
    public void Resuming_after_one_epoch_continues_bit_identically()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine(Checkpoint.FileName);

        using var straight = TinyLearner.Create(trainImages: 96, validImages: 32, seed: 3);
        var straightFit = Fit(straight);

        using var first = TinyLearner.Create(trainImages: 96, validImages: 32, seed: 3);
        first.Callbacks.Add(new SaveCheckpointCallback(first, new CheckpointFiles(dir.Path), "recipe"));
        first.Callbacks.Add(new StopAfterFirstEpoch(first));
        Fit(first);
        Assert.Equal(1, first.Epoch);

        // A fresh process would start from other random weights and RNG state: the checkpoint must restore all of it.
        using var resumed = TinyLearner.Create(trainImages: 96, validImages: 32, seed: 3, initSeed: 99);
        Assert.NotEqual(TinyLearner.Parameters(first), TinyLearner.Parameters(resumed));
        TorchSharp.torch.manual_seed(12345);
        var info = Checkpoint.Load(path, resumed);
        var resumedFit = Fit(resumed);

        Assert.Equal(1, info.Epoch);
        Assert.Equal(3, info.Step);
        Assert.Equal("recipe", info.Recipe);
        Assert.Equal(TinyLearner.Parameters(straight), TinyLearner.Parameters(resumed));
        Assert.Equal(BufferBytes(straight), BufferBytes(resumed));
        Assert.Equal(straightFit.Epochs[^1].ValidLoss, resumedFit.Epochs[^1].ValidLoss);
        Assert.Equal(straightFit.Epochs[^1].TrainLoss, resumedFit.Epochs[^1].TrainLoss);
        Assert.Equal(6, resumed.Step);
    }

    [Fact]
    public void Saving_replaces_the_file_atomically_and_leaves_no_temporary_files()
    {
        using var dir = new TempDirectory();
        var path = dir.Combine(Checkpoint.FileName);
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);

        Checkpoint.Save(path, learner, "a");
        learner.Epoch = 1;
        Checkpoint.Save(path, learner, "b");

        Assert.Equal([path], Directory.GetFiles(dir.Path));
        Assert.Equal("b", Checkpoint.ReadInfo(path).Recipe);
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("header")]
    public void A_corrupted_checkpoint_is_rejected_naming_the_file(string damage)
    {
        using var dir = new TempDirectory();
        var path = dir.Combine(Checkpoint.FileName);
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);
        Checkpoint.Save(path, learner, "recipe");
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "flip": bytes[bytes.Length / 2] ^= 0x40; break;
            case "truncate": bytes = bytes[..(bytes.Length - 1000)]; break;
            case "header": bytes[0] = (byte)'X'; break;
        }
        File.WriteAllBytes(path, bytes);
        var before = TinyLearner.Parameters(learner);

        var error = Assert.Throws<CorruptCheckpointException>(() => Checkpoint.Load(path, learner));

        Assert.Contains(path, error.Message);
        Assert.Equal(before, TinyLearner.Parameters(learner));
    }

    private static byte[][] BufferBytes(Learner learner) =>
        [.. learner.Model.named_buffers().Select(b => b.buffer.bytes.ToArray())];

    private sealed class StopAfterFirstEpoch(Learner learner) : ILearnerCallback
    {
        public void OnEpochEnd(EpochResult epoch) => learner.RequestStop();
    }
}
