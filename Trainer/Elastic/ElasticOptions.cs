namespace Trainer.Elastic;

/// <summary>How the <see cref="ElasticAgent"/> restarts, stops and watches.</summary>
internal sealed record ElasticOptions
{
    /// <summary>Restarts of the whole group after a failure before giving up (torchrun's --max-restarts).</summary>
    public int MaxRestarts { get; init; } = Runtime.LaunchContract.DefaultMaxRestarts;

    /// <summary>After another rank's restartable failure, how long a worker may take to fail by itself (its reason may be the cause) before it is stopped.</summary>
    public TimeSpan ExitGrace { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>After SIGTERM, how long a worker may take to exit before SIGKILL.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often each agent tells rank 0's agent it is alive.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An agent silent this long is lost, and the run with it; also the longest a heartbeat may wait for the store.</summary>
    public TimeSpan LeaseTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A worker that makes no progress this long is hung (see Watchdog.HangWatch); zero turns the watch off.</summary>
    public TimeSpan HangTimeout { get; init; } = TimeSpan.FromSeconds(Training.TrainOptions.DefaultHangTimeout);

    /// <summary>Where rank 0's agent writes the flight record of a failed round (the run's --output); none when null.</summary>
    public string? OutputFolder { get; init; }

    /// <summary>How long rank 0's agent keeps the store up at the end for the others to read the verdict and leave.</summary>
    public TimeSpan LeaveTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
