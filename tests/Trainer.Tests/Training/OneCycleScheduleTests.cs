using Trainer.Training;

namespace Trainer.Tests.Training;

public sealed class OneCycleScheduleTests
{
    // The seed: fit_one_cycle(10, 3e-3, div_factor=10, pct_start=0.5) with 390 batches per epoch (50,000 / 128, drop_last).
    private static readonly OneCycleSchedule Seed = new(totalSteps: 3900, maxLr: 3e-3, divFactor: 10, pctStart: 0.5);

    private static double Cos(double start, double end, double pct) => end + (start - end) / 2 * (Math.Cos(Math.PI * pct) + 1);

    [Fact]
    public void Starts_at_max_lr_over_div_factor_with_momentum_095()
    {
        Assert.Equal(3e-4, Seed.LearningRate(0), 15);
        Assert.Equal(0.95, Seed.Momentum(0), 15);
    }

    [Fact]
    public void Peaks_at_max_lr_with_momentum_085_at_the_end_of_phase_1()
    {
        Assert.Equal(1950, Seed.WarmupSteps);
        Assert.Equal(3e-3, Seed.LearningRate(1950), 15);
        Assert.Equal(0.85, Seed.Momentum(1950), 15);
        Assert.Equal(Cos(3e-4, 3e-3, 1949 / 1950.0), Seed.LearningRate(1949), 15);
    }

    [Fact]
    public void Follows_cosine_annealing_in_the_middle_of_each_phase()
    {
        // Half-way through phase 1: the mean of start and end, for both curves.
        Assert.Equal((3e-4 + 3e-3) / 2, Seed.LearningRate(975), 15);
        Assert.Equal(0.90, Seed.Momentum(975), 15);
        // A fifth of phase 1 and half of phase 2, against annealing_cos.
        Assert.Equal(Cos(3e-4, 3e-3, 0.2), Seed.LearningRate(390), 15);
        Assert.Equal(Cos(0.95, 0.85, 0.2), Seed.Momentum(390), 15);
        Assert.Equal(Cos(3e-3, 3e-3 / 1e5, 0.5), Seed.LearningRate(1950 + 975), 15);
        Assert.Equal(Cos(0.85, 0.95, 0.5), Seed.Momentum(1950 + 975), 15);
    }

    [Fact]
    public void Ends_near_max_lr_over_div_factor_times_1e4()
    {
        var final = 3e-3 / (10 * 1e4);
        Assert.Equal(final, Seed.FinalLr, 15);
        // The last step is taken at pct (n - 1) / n of phase 2, as fastai's per-batch scheduler does.
        Assert.Equal(Cos(3e-3, final, 1949 / 1950.0), Seed.LearningRate(3899), 15);
        Assert.InRange(Seed.LearningRate(3899), final, final * 1.1);
        Assert.Equal(Cos(0.85, 0.95, 1949 / 1950.0), Seed.Momentum(3899), 15);
    }

    [Fact]
    public void Uses_fastais_defaults_and_int_rounding_of_the_warmup()
    {
        var schedule = new OneCycleSchedule(totalSteps: 10, maxLr: 1);
        Assert.Equal(3, schedule.WarmupSteps); // int(10 · 0.3)
        Assert.Equal(1 / 25.0, schedule.LearningRate(0), 15);
        Assert.Equal(1 / 25e4, schedule.FinalLr, 15);
        Assert.Equal(1.0, schedule.LearningRate(3), 15);
    }

    [Fact]
    public void Steps_outside_the_schedule_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Seed.LearningRate(3900));
        Assert.Throws<ArgumentOutOfRangeException>(() => Seed.Momentum(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleSchedule(0, 1e-3));
    }
}
