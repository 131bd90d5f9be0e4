using Trainer.Training;
using static TorchSharp.torch;

namespace Trainer.Tests.Training;

public sealed class LearnerTests
{
    [Fact]
    public void Fit_one_cycle_on_synthetic_data_lowers_the_loss_and_beats_chance()
    {
        var recorder = new Recorder();
        using var learner = TinyLearner.Create(trainImages: 320, validImages: 100, batchSize: 32, callbacks: recorder);

        var before = learner.Validate(0);
        var fit = learner.FitOneCycle(epochs: 3, maxLr: 3e-3, wd: 0.4, divFactor: 10, pctStart: 0.5);

        Assert.Equal(3, fit.Epochs.Count);
        Assert.False(fit.Stopped);
        Assert.Equal(3, learner.Epoch);
        Assert.Equal(30, learner.Step);
        var losses = recorder.Batches.Select(b => b.Loss).ToList();
        Assert.True(losses.TakeLast(5).Average() < losses.Take(5).Average() * 0.8, $"loss did not fall: {string.Join(", ", losses)}");
        Assert.True(fit.Epochs[^1].ValidLoss < before.Loss, $"valid loss {fit.Epochs[^1].ValidLoss} not below {before.Loss}");
        Assert.True(fit.Epochs[^1].Accuracy > 0.3, $"accuracy {fit.Epochs[^1].Accuracy} is not clearly above chance (0.1)");
        Assert.Equal(100, fit.Epochs[^1] is { } last ? recorder.Validations[^1].Samples : 0);
        Assert.True(fit.ImagesPerSecond > 0);
    }

    [Fact]
    public void Callbacks_see_each_step_with_the_schedules_lr_and_momentum_in_fastai_order()
    {
        var recorder = new Recorder();
        using var learner = TinyLearner.Create(trainImages: 64, validImages: 20, batchSize: 16, callbacks: recorder);

        learner.FitOneCycle(epochs: 2, maxLr: 1e-3, wd: 0.1, divFactor: 10, pctStart: 0.5);

        var schedule = new OneCycleSchedule(8, 1e-3, 10, 0.5);
        Assert.Equal(Enumerable.Range(1, 8), recorder.Batches.Select(b => b.Step));
        Assert.Equal(Enumerable.Range(0, 8).Select(schedule.LearningRate), recorder.Batches.Select(b => b.LearningRate));
        Assert.Equal(Enumerable.Range(0, 8).Select(schedule.Momentum), recorder.Batches.Select(b => b.Momentum));
        Assert.All(recorder.Batches, b => Assert.True(b.ImagesPerSecond > 0 && b.DataWait >= TimeSpan.Zero));
        Assert.Equal(
            ["fit", "epoch 0", .. Enumerable.Repeat("batch", 4), "valid", "end 0", "epoch 1", .. Enumerable.Repeat("batch", 4), "valid", "end 1", "fit end"],
            recorder.Events);
        // The optimizer ran with the last step's hyper-parameters: AdamW betas (mom, 0.99), decoupled wd.
        var group = learner.Optimizer.ParamGroups.Cast<TorchSharp.Modules.AdamW.ParamGroup>().Single();
        Assert.Equal((schedule.Momentum(7), 0.99), group.Betas);
        Assert.Equal(0.1, group.Options.weight_decay);
        Assert.Equal(1e-8, group.Options.eps);
    }

    [Fact]
    public void Data_parallel_hooks_are_called_and_reduce_the_validation_sums()
    {
        var parallel = new DoublingParallel();
        using var learner = TinyLearner.Create(trainImages: 64, validImages: 20, batchSize: 16, parallel: parallel);

        var fit = learner.FitOneCycle(epochs: 1, maxLr: 1e-3);

        Assert.Equal(1, parallel.FitStarts);
        Assert.Equal(4, parallel.Forwards);
        Assert.Equal(4, parallel.Backwards);
        Assert.True(parallel.GradientsSeen, "AfterBackward ran before the gradients existed");
        // Both the sums and the count doubled: the means are unchanged, the count is the world's.
        var validation = learner.Validate(0);
        Assert.Equal(40, validation.Samples);
        Assert.Equal(fit.Epochs[0].Accuracy, validation.Accuracy, 10);
        Assert.False(learner.IsMain);
    }

    [Fact]
    public void A_stop_request_ends_the_fit_without_counting_the_unfinished_epoch()
    {
        using var learner = TinyLearner.Create(trainImages: 64, validImages: 20, batchSize: 16);
        learner.Callbacks.Add(new StopAt(learner, step: 2));

        var fit = learner.FitOneCycle(epochs: 2, maxLr: 1e-3);

        Assert.True(fit.Stopped);
        Assert.Empty(fit.Epochs);
        Assert.Equal(0, learner.Epoch);
        Assert.Equal(2, learner.Step);
    }

    private sealed class Recorder : ILearnerCallback
    {
        public List<string> Events { get; } = [];
        public List<BatchEnd> Batches { get; } = [];
        public List<ValidationResult> Validations { get; } = [];

        public void OnFitStart(FitStart fit) => Events.Add("fit");
        public void OnEpochStart(int epoch) => Events.Add($"epoch {epoch}");
        public void OnBatchEnd(BatchEnd batch) { Events.Add("batch"); Batches.Add(batch); }
        public void OnValidationEnd(ValidationResult validation) { Events.Add("valid"); Validations.Add(validation); }
        public void OnEpochEnd(EpochResult epoch) => Events.Add($"end {epoch.Epoch}");
        public void OnFitEnd(FitResult fit) => Events.Add("fit end");
    }

    private sealed class StopAt(Learner learner, int step) : ILearnerCallback
    {
        public void OnBatchEnd(BatchEnd batch)
        {
            if (batch.Step == step) learner.RequestStop();
        }
    }

    /// <summary>Pretends to be rank 1 of two identical ranks: every sum doubles.</summary>
    private sealed class DoublingParallel : IDataParallel
    {
        public int FitStarts, Forwards, Backwards;
        public bool GradientsSeen = true;

        public int Rank => 1;
        public int WorldSize => 2;

        public void OnFitStart(nn.Module model) => FitStarts++;
        public void BeforeForward(nn.Module model) => Forwards++;

        public void AfterBackward(nn.Module model)
        {
            Backwards++;
            GradientsSeen &= model.parameters().All(p => p.grad is not null);
        }

        public void AllReduceSum(Span<double> values)
        {
            for (var i = 0; i < values.Length; i++) values[i] *= 2;
        }
    }
}
