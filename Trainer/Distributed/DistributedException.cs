namespace Trainer.Distributed;

/// <summary>
/// A collective failed: a peer was lost, misbehaved or the transport failed. After one, the process group is unusable.
/// <see cref="FailedRank"/> is the rank the failure is attributed to, when known.
/// </summary>
public class DistributedException : Exception
{
    public DistributedException(string message, int? failedRank = null, Exception? innerException = null)
        : base(message, innerException) => FailedRank = failedRank;

    public int? FailedRank { get; }

    /// <summary>The failure as first described, without where it was later observed; what is passed on to other ranks.</summary>
    internal string Cause { get => cause ?? Message; init => cause = value; }

    private readonly string? cause;
}
