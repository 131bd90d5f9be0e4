using Trainer.Runtime;
using System.Globalization;

namespace Trainer.Distributed;

/// <summary>
/// Who this process is in the run, read from torchrun's environment contract (plus our TRAINER_* variables).
/// When neither RANK nor WORLD_SIZE is set the process is a world of one (rank 0 serving the store on
/// 127.0.0.1:29500, like torchrun's standalone mode), so a plain <c>Trainer train</c> needs no variables.
/// </summary>
public sealed record DistributedContract(
    int Rank,
    int LocalRank,
    int WorldSize,
    int LocalWorldSize,
    int GroupRank,
    string MasterAddr,
    int MasterPort,
    string RunId,
    int RestartCount,
    string? RunSecret,
    int? Threads)
{
    public const string DefaultMasterAddr = LaunchContract.DefaultMasterAddr;
    public const int DefaultMasterPort = LaunchContract.DefaultMasterPort;
    public const string DefaultRunId = "none";
    public const int MaxThreads = 1024;

    /// <summary>Every variable the contract reads.</summary>
    public static readonly IReadOnlyList<string> Variables =
    [
        LaunchContract.Rank, LaunchContract.LocalRank, LaunchContract.WorldSize, LaunchContract.LocalWorldSize, LaunchContract.GroupRank,
        LaunchContract.MasterAddr, LaunchContract.MasterPort, LaunchContract.RunId, LaunchContract.RestartCount, LaunchContract.RunSecret,
        LaunchContract.Threads, LaunchContract.OmpNumThreads,
    ];

    /// <summary>OMP_NUM_THREADS, which torchrun sets to 1 when it starts several ranks per node; TRAINER_THREADS wins over it.</summary>
    public int? OmpThreads { get; init; }

    public bool IsMaster => Rank == 0;

    public static DistributedContract FromEnvironment() =>
        FromEnvironment(Variables.ToDictionary(name => name, Environment.GetEnvironmentVariable));

    /// <exception cref="ContractException">A variable is missing, not a number, or out of range.</exception>
    public static DistributedContract FromEnvironment(IReadOnlyDictionary<string, string?> env)
    {
        string? Read(string name) => env.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

        var worldDeclared = Read(LaunchContract.Rank) is not null || Read(LaunchContract.WorldSize) is not null;
        if (worldDeclared)
        {
            foreach (var required in (string[])[LaunchContract.Rank, LaunchContract.WorldSize, LaunchContract.MasterAddr, LaunchContract.MasterPort])
                if (Read(required) is null)
                    throw new ContractException(
                        $"{required} is not set but {(Read(LaunchContract.Rank) is null ? "WORLD_SIZE" : "RANK")} is; {Hint(required)} (torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT together).");
        }

        var worldSize = ParseCount(LaunchContract.WorldSize, Read(LaunchContract.WorldSize), 1);
        var rank = ParseIndex(LaunchContract.Rank, Read(LaunchContract.Rank), 0);
        if (rank >= worldSize)
            throw new ContractException($"RANK={rank} is out of range for WORLD_SIZE={worldSize}; set RANK to 0..{worldSize - 1} or raise WORLD_SIZE.");

        var localWorldSize = ParseCount(LaunchContract.LocalWorldSize, Read(LaunchContract.LocalWorldSize), worldSize);
        if (localWorldSize > worldSize)
            throw new ContractException($"LOCAL_WORLD_SIZE={localWorldSize} exceeds WORLD_SIZE={worldSize}; set LOCAL_WORLD_SIZE to the number of ranks on this node (1..{worldSize}).");
        var localRank = ParseIndex(LaunchContract.LocalRank, Read(LaunchContract.LocalRank), rank);
        if (localRank >= localWorldSize)
            throw new ContractException($"LOCAL_RANK={localRank}{(Read(LaunchContract.LocalRank) is null ? " (not set, so RANK)" : "")} is out of range for LOCAL_WORLD_SIZE={localWorldSize}; set LOCAL_RANK to 0..{localWorldSize - 1} or raise LOCAL_WORLD_SIZE.");
        var groupRank = ParseIndex(LaunchContract.GroupRank, Read(LaunchContract.GroupRank), 0);

        var masterAddr = Read(LaunchContract.MasterAddr) ?? DefaultMasterAddr;
        if (Uri.CheckHostName(masterAddr.Trim('[', ']')) == UriHostNameType.Unknown)
            throw new ContractException($"MASTER_ADDR='{masterAddr}' is not a host name or IP address; {Hint(LaunchContract.MasterAddr)}.");
        var masterPort = ParseIndex(LaunchContract.MasterPort, Read(LaunchContract.MasterPort), DefaultMasterPort);
        if (masterPort is < 1 or > 65535)
            throw new ContractException($"MASTER_PORT={masterPort} is out of range; {Hint(LaunchContract.MasterPort)}.");

        var runId = Read(LaunchContract.RunId) ?? DefaultRunId;
        var restartCount = ParseIndex(LaunchContract.RestartCount, Read(LaunchContract.RestartCount), 0);

        string? secret = null;
        if (env.TryGetValue(LaunchContract.RunSecret, out var rawSecret) && rawSecret is not null)
        {
            if (string.IsNullOrWhiteSpace(rawSecret))
                throw new ContractException($"TRAINER_RUN_SECRET is set but empty; {Hint(LaunchContract.RunSecret)}.");
            secret = rawSecret;
        }

        return new DistributedContract(rank, localRank, worldSize, localWorldSize, groupRank, masterAddr, masterPort,
            runId, restartCount, secret, ParseThreads(LaunchContract.Threads, Read(LaunchContract.Threads)))
        {
            OmpThreads = ParseThreads(LaunchContract.OmpNumThreads, Read(LaunchContract.OmpNumThreads)),
        };
    }

    /// <summary>
    /// Torch CPU threads for this rank when no --threads is given: TRAINER_THREADS, else OMP_NUM_THREADS, else the node's
    /// cores shared among its LOCAL_WORLD_SIZE ranks (at least 1): ranks that each took every core would oversubscribe it.
    /// </summary>
    public (int Threads, string Reason) ThreadsPerRank(int cores)
    {
        if (Threads is { } threads) return (threads, $"TRAINER_THREADS={threads}");
        if (OmpThreads is { } omp) return (omp, $"OMP_NUM_THREADS={omp}");
        var shared = Math.Max(1, cores / LocalWorldSize);
        return (shared, $"{cores} cores / LOCAL_WORLD_SIZE {LocalWorldSize} → {shared} thread{(shared == 1 ? "" : "s")} per rank");
    }

    private static int? ParseThreads(string name, string? text) =>
        text is null ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var threads) && threads is >= 1 and <= MaxThreads ? threads
        : throw new ContractException($"{name}={text}: must be a whole number from 1 to {MaxThreads} (torch threads per rank); fix or unset it.");

    /// <summary>Never prints the secret.</summary>
    public override string ToString() =>
        $"rank {Rank}/{WorldSize} (local {LocalRank}/{LocalWorldSize}, group {GroupRank}) master {MasterAddr}:{MasterPort} " +
        $"run {RunId} restart {RestartCount}{(RunSecret is null ? "" : " (secret set)")}{(Threads is { } t ? $" threads {t}" : "")}{(OmpThreads is { } o ? $" omp threads {o}" : "")}";

    private static int ParseCount(string name, string? text, int fallback)
    {
        var value = ParseIndex(name, text, fallback);
        if (value < 1)
            throw new ContractException($"{name}={value} must be at least 1; {Hint(name)}.");
        return value;
    }

    private static int ParseIndex(string name, string? text, int fallback)
    {
        if (text is null)
            return fallback;
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            throw new ContractException($"{name}='{text}' is not a whole number; {Hint(name)}.");
        if (value < 0)
            throw new ContractException($"{name}={value} is negative; {Hint(name)}.");
        if (value > int.MaxValue)
            throw new ContractException($"{name}={value} is too large; {Hint(name)}.");
        return (int)value;
    }

    private static string Hint(string name) => name switch
    {
        LaunchContract.Rank => "set RANK to this process's global rank, 0..WORLD_SIZE-1",
        LaunchContract.WorldSize => "set WORLD_SIZE to the total number of ranks (at least 1)",
        LaunchContract.LocalRank => "set LOCAL_RANK to this process's rank on its node, 0..LOCAL_WORLD_SIZE-1",
        LaunchContract.LocalWorldSize => "set LOCAL_WORLD_SIZE to the number of ranks on this node (at least 1)",
        LaunchContract.GroupRank => "set GROUP_RANK to this node's index (0 or more)",
        LaunchContract.MasterAddr => "set MASTER_ADDR to the host name or IP address of rank 0 (e.g. 127.0.0.1)",
        LaunchContract.MasterPort => "set MASTER_PORT to a free TCP port on rank 0's host, 1..65535 (e.g. 29500)",
        LaunchContract.RestartCount => "set TORCHELASTIC_RESTART_COUNT to the restart round (0 or more) or unset it",
        LaunchContract.RunSecret => "set TRAINER_RUN_SECRET to one random string shared by every rank (e.g. `openssl rand -hex 16`) or unset it for an open store",
        _ => $"fix {name}",
    };
}
