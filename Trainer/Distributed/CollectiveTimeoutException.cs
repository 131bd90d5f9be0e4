namespace Trainer.Distributed;

/// <summary>A collective did not finish within <see cref="ProcessGroupOptions.Timeout"/>; <see cref="DistributedException.FailedRank"/> is the rank it was waiting for.</summary>
public sealed class CollectiveTimeoutException(string message, int? failedRank) : DistributedException(message, failedRank);
