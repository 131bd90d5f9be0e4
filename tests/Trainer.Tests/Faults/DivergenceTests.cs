using Trainer.Runtime;
using TorchSharp;
using Trainer.Commands;
using Trainer.Tests.Training;
using Trainer.Training;
using static TorchSharp.torch;

namespace Trainer.Tests.Faults;

/// <summary>A NaN or infinite loss stops the fit with a clear message before the weights change, on every rank at the same step.</summary>
[Collection("Faults")]
public sealed class DivergenceTests
{
    [Fact]
    public void A_finite_loss_leaves_the_gradients_bit_identical_and_a_non_finite_one_poisons_them()
    {
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 16);
        using var input = torch.rand(4, 3, 32, 32);
        using var loss = learner.Model.forward(input).sum();
        loss.backward();
        var before = Gradients(learner.Model);

        NonFiniteCheck.PoisonIfNotFinite(learner.Model, loss);
        Assert.Equal(before, Gradients(learner.Model));
        NonFiniteCheck.ThrowIfDiverged(learner.Model, step: 1, loss.item<float>(), rank: 0);

        using var nan = torch.tensor(float.NaN);
        NonFiniteCheck.PoisonIfNotFinite(learner.Model, nan);
        var error = Assert.Throws<TrainingDivergedException>(() => NonFiniteCheck.ThrowIfDiverged(learner.Model, step: 1, double.NaN, rank: 3));
        Assert.Contains("training diverged at step 1", error.Message);
        Assert.Contains("rank 3's own loss: NaN", error.Message);
    }

    [Fact]
    public void Gradients_that_turn_NaN_stop_the_fit_at_that_step_before_the_optimizer_touches_the_weights()
    {
        var parallel = new NanGradientsAtStep(3);
        using var learner = TinyLearner.Create(trainImages: 128, validImages: 32, parallel: parallel);
        float[][]? afterStep2 = null;
        learner.Callbacks.Add(new AtStep(2, () => afterStep2 = TinyLearner.Parameters(learner)));

        var error = Assert.Throws<TrainingDivergedException>(() => learner.FitOneCycle(epochs: 2, maxLr: 3e-3));

        Assert.Equal(3, error.Step);
        Assert.Equal(2, learner.Step);
        Assert.Equal(afterStep2, TinyLearner.Parameters(learner));
        Assert.All(TinyLearner.Parameters(learner), p => Assert.All(p, v => Assert.True(float.IsFinite(v))));
    }

    [Fact]
    public void A_learning_rate_that_blows_up_stops_the_train_command_with_exit_code_3_and_saves_nothing_after_it()
    {
        using var dir = new TempDirectory();

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(dir.Path, "--epochs", "3", "--lr", "1e30"));

        Assert.Equal(ExitCodes.Diverged, exit);
        Assert.Matches(@"error: rank 0: training diverged at step \d+: the averaged gradients are (NaN|infinite)", error);
        Assert.Contains($"The last checkpoint in {dir.Path} is kept; lower --lr", error);
        // Weight decay multiplies the weights by 1 - lr·wd: they overflow within the first epoch, which is never saved.
        Assert.False(File.Exists(Path.Combine(dir.Path, Checkpoint.FileName)));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_NaN_on_one_rank_stops_every_rank_at_the_same_step_without_a_restart_and_keeps_the_last_checkpoint()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 128, more: ["--checkpoint-every", "2"]),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = "point=nan,rank=1,at=6" });

        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.All(exitCodes, code => Assert.Equal(ExitCodes.Diverged, code));
        foreach (var rank in run.Ranks)
        {
            Assert.Contains($"error: rank {rank.Rank}: training diverged at step 6: ", rank.Output);
            Assert.Contains("not restarting, since a restart would meet the same problem", rank.Output);
            Assert.DoesNotContain("round 1:", rank.Output);
        }
        var kept = Checkpoint.ReadInfo(Path.Combine(output.Path, Checkpoint.FileName));
        Assert.Equal((1, 4), (kept.Epoch, kept.Step));
    }

    private static float[][] Gradients(nn.Module model) =>
        [.. model.parameters().Where(p => p.grad is not null).Select(p => p.grad!.data<float>().ToArray())];

    private sealed class NanGradientsAtStep(int step) : IDataParallel
    {
        private int _backwards;

        public int Rank => 0;

        public int WorldSize => 1;

        public void AfterBackward(nn.Module model)
        {
            if (++_backwards != step) return;
            using var grad = model.parameters().Last().grad!;
            using (no_grad()) grad.fill_(float.PositiveInfinity);
        }
    }

    private sealed class AtStep(int step, Action action) : ILearnerCallback
    {
        public void OnBatchEnd(BatchEnd batch)
        {
            if (batch.Step == step) action();
        }
    }
}
