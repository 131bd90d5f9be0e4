namespace Trainer.Training;

/// <summary>One process, world size 1: every seam of <see cref="IDataParallel"/> is a no-op.</summary>
internal sealed class SingleProcess : IDataParallel
{
    public static readonly SingleProcess Instance = new();

    public int Rank => 0;

    public int WorldSize => 1;
}
