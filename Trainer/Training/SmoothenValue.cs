namespace Trainer.Training;

/// <summary>fastai's SmoothenValue: a debiased exponential moving average (the "train_loss" fastai prints, beta 0.98).</summary>
internal sealed class SmoothenValue(double beta = 0.98)
{
    public double Beta { get; } = beta;
    public int Count { get; private set; }
    public double MovingAverage { get; private set; }

    public double Smooth => Count == 0 ? double.NaN : MovingAverage / (1 - Math.Pow(Beta, Count));

    public void Add(double value)
    {
        Count++;
        MovingAverage = Beta * MovingAverage + (1 - Beta) * value;
    }

    /// <summary>Restores the state saved in a checkpoint.</summary>
    public void Restore(int count, double movingAverage)
    {
        Count = count;
        MovingAverage = movingAverage;
    }
}
