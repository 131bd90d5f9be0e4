namespace Trainer.Runtime;

/// <summary>
/// What a launcher and the Trainer agree on: the environment variables a rank is started with, the defaults both
/// sides assume, and the files the launcher writes for a running trainer. The Trainer parses them
/// (<c>DistributedContract</c>, <c>DistributedSettings</c>); the app host links this file (AppHost.csproj) and
/// sets them, so a name or a default is written once. No dependencies, so it compiles in both.
/// </summary>
public static class LaunchContract
{
    // torchrun's variables (torch.distributed.run), with its meanings.
    public const string Rank = "RANK";
    public const string LocalRank = "LOCAL_RANK";
    public const string WorldSize = "WORLD_SIZE";
    public const string LocalWorldSize = "LOCAL_WORLD_SIZE";
    public const string GroupRank = "GROUP_RANK";
    public const string MasterAddr = "MASTER_ADDR";
    public const string MasterPort = "MASTER_PORT";
    public const string RunId = "TORCHELASTIC_RUN_ID";
    public const string RestartCount = "TORCHELASTIC_RESTART_COUNT";
    public const string OmpNumThreads = "OMP_NUM_THREADS";

    // Ours.
    /// <summary>The run's shared secret: the store and the CPU ring refuse a rank without it.</summary>
    public const string RunSecret = "TRAINER_RUN_SECRET";
    /// <summary>Torch CPU threads per rank; wins over OMP_NUM_THREADS.</summary>
    public const string Threads = "TRAINER_THREADS";

    /// <summary>torchrun's standalone master port.</summary>
    public const int DefaultMasterPort = 29500;
    public const string DefaultMasterAddr = "127.0.0.1";

    /// <summary>Restarts of the whole group after a failure. torchrun's default is 0; a run that resumes from its checkpoints is better off trying again.</summary>
    public const int DefaultMaxRestarts = 3;

    /// <summary>
    /// Requests to a running trainer, as files in &lt;output&gt;/control/: the app host's resource commands write them
    /// (or `touch`), the trainers' RunControlCallback polls for them.
    /// </summary>
    public const string ControlFolder = "control";
    public const string SaveCheckpointRequest = "save-checkpoint";
    public const string StopAfterEpochRequest = "stop-after-epoch";
}
