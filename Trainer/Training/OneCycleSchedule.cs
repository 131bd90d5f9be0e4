namespace Trainer.Training;

/// <summary>
/// fastai v1's OneCycleScheduler as a pure function of the step. Over <see cref="TotalSteps"/> = epochs ×
/// batches per epoch, the first int(total · pctStart) steps anneal the learning rate from maxLr / divFactor
/// to maxLr and the momentum (Adam's beta1) from moms.1 to moms.2 with cosine; the rest anneal the learning
/// rate to maxLr / finalDiv (default divFactor · 1e4) and the momentum back. Step i is the i-th optimizer
/// step (0-based), taken with the values this schedule gives for i, as fastai's per-batch callback does.
/// </summary>
internal sealed class OneCycleSchedule
{
    public OneCycleSchedule(int totalSteps, double maxLr, double divFactor = 25, double pctStart = 0.3, double momStart = 0.95, double momMid = 0.85, double? finalDiv = null)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "The schedule needs at least one step.");
        if (pctStart is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(pctStart), pctStart, "pct_start must be between 0 and 1.");
        TotalSteps = totalSteps;
        MaxLr = maxLr;
        DivFactor = divFactor;
        PctStart = pctStart;
        FinalDiv = finalDiv ?? divFactor * 1e4;
        MomStart = momStart;
        MomMid = momMid;
        WarmupSteps = (int)(totalSteps * pctStart);
    }

    public int TotalSteps { get; }
    public double MaxLr { get; }
    public double DivFactor { get; }
    public double PctStart { get; }
    public double FinalDiv { get; }
    public double MomStart { get; }
    public double MomMid { get; }

    /// <summary>Steps of phase 1: int(TotalSteps · PctStart), as fastai computes a1.</summary>
    public int WarmupSteps { get; }

    public double StartLr => MaxLr / DivFactor;
    public double FinalLr => MaxLr / FinalDiv;

    /// <summary>fastai's annealing_cos: cosine from <paramref name="start"/> (pct 0) to <paramref name="end"/> (pct 1).</summary>
    public static double AnnealingCos(double start, double end, double pct) => end + (start - end) / 2 * (Math.Cos(Math.PI * pct) + 1);

    public double LearningRate(int step) => Phase(step, StartLr, MaxLr, MaxLr, FinalLr);

    /// <summary>The momentum, which drives Adam's beta1.</summary>
    public double Momentum(int step) => Phase(step, MomStart, MomMid, MomMid, MomStart);

    private double Phase(int step, double start1, double end1, double start2, double end2)
    {
        if (step < 0 || step >= TotalSteps) throw new ArgumentOutOfRangeException(nameof(step), step, $"Step must be within 0..{TotalSteps - 1}.");
        return step < WarmupSteps
            ? AnnealingCos(start1, end1, step / (double)WarmupSteps)
            : AnnealingCos(start2, end2, (step - WarmupSteps) / (double)(TotalSteps - WarmupSteps));
    }
}
