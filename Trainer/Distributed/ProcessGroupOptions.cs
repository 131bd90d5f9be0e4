namespace Trainer.Distributed;

/// <summary>Settings for <see cref="ProcessGroup.CreateAsync"/>.</summary>
public sealed record ProcessGroupOptions
{
    public Backend Backend { get; init; } = Backend.Auto;

    /// <summary>Longest any collective (and the rendezvous) may take before it fails; PyTorch's NCCL default.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Store keys of this group live under "{KeyPrefix}/{Generation}/" (<see cref="StorePrefix"/>), so groups and restarts never collide.</summary>
    public string KeyPrefix { get; init; } = "pg";

    /// <summary>Restart generation (TORCHELASTIC_RESTART_COUNT): connections from another generation are refused.</summary>
    public int Generation { get; init; }

    /// <summary>This process's index on its machine (LOCAL_RANK); NCCL uses CUDA device LocalRank.</summary>
    public int LocalRank { get; init; }

    /// <summary>The run's secret (TRAINER_RUN_SECRET): the CPU ring admits only peers that prove they know it. Null = an open ring.</summary>
    public string? Secret { get; init; }

    /// <summary>Told of every collective this group issues and completes (flight recorder, hang watch); none by default.</summary>
    public ICollectiveObserver? Observer { get; init; }

    /// <summary>CPU backend: bytes of the buffer reduce-scatter receives into (a multiple of 8); tests shrink it to exercise wrap-around.</summary>
    internal long RingScratchBytes { get; init; } = 4 << 20;

    internal string StorePrefix => $"{KeyPrefix}/{Generation}";

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, $"Timeout must be positive (got {Timeout}); the default is 10 minutes.");
        if (string.IsNullOrWhiteSpace(KeyPrefix))
            throw new ArgumentException("KeyPrefix must not be empty; the default is \"pg\".", nameof(KeyPrefix));
        if (Generation < 0)
            throw new ArgumentOutOfRangeException(nameof(Generation), Generation, $"Generation must be >= 0 (got {Generation}); use TORCHELASTIC_RESTART_COUNT.");
        if (RingScratchBytes < 64 || RingScratchBytes % 8 != 0)
            throw new ArgumentOutOfRangeException(nameof(RingScratchBytes), RingScratchBytes, "RingScratchBytes must be a multiple of 8, at least 64.");
        if (LocalRank < 0)
            throw new ArgumentOutOfRangeException(nameof(LocalRank), LocalRank, $"LocalRank must be >= 0 (got {LocalRank}); use LOCAL_RANK.");
    }
}
