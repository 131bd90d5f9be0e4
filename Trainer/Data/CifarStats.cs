namespace Trainer.Data;

/// <summary>fastai's cifar_stats: the per-channel mean and standard deviation that normalize() uses.</summary>
internal static class CifarStats
{
    public static readonly float[] Mean = [0.491f, 0.482f, 0.447f];
    public static readonly float[] Std = [0.247f, 0.243f, 0.261f];
}
