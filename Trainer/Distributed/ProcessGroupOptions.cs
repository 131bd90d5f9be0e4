namespace Trainer.Distributed;

/// <summary>Settings for <see cref="ProcessGroup.CreateAsync"/>.</summary>
public sealed record ProcessGroupOptions
{
    public Backend Backend { get; init; } = Backend.Auto;

    /// <summary>Longest any collective (and the rendezvous) may take before it fails; PyTorch's NCCL default.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Store keys of this group start with "{KeyPrefix}/{Generation}/", so groups and restarts never collide.</summary>
    public string KeyPrefix { get; init; } = "pg";

    /// <summary>Restart generation (TORCHELASTIC_RESTART_COUNT): connections from another generation are refused.</summary>
    public int Generation { get; init; }

    /// <summary>This process's index on its machine (LOCAL_RANK); NCCL uses CUDA device LocalRank.</summary>
    public int LocalRank { get; init; }

    internal string Key(string name) => $"{KeyPrefix}/{Generation}/{name}";

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, $"Timeout must be positive (got {Timeout}); the default is 10 minutes.");
        if (string.IsNullOrWhiteSpace(KeyPrefix))
            throw new ArgumentException("KeyPrefix must not be empty; the default is \"pg\".", nameof(KeyPrefix));
        if (Generation < 0)
            throw new ArgumentOutOfRangeException(nameof(Generation), Generation, $"Generation must be >= 0 (got {Generation}); use TORCHELASTIC_RESTART_COUNT.");
        if (LocalRank < 0)
            throw new ArgumentOutOfRangeException(nameof(LocalRank), LocalRank, $"LocalRank must be >= 0 (got {LocalRank}); use LOCAL_RANK.");
    }
}
