using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Trainer.Distributed.Store;
using Trainer.Faults;
using Trainer.Runtime;

namespace Trainer.Distributed;

public sealed record RendezvousOptions
{
    public static readonly TimeSpan DefaultJoinTimeout = TimeSpan.FromSeconds(300);

    /// <summary>How long a rank waits for the store to come up and for every rank to arrive (TRAINER_JOIN_TIMEOUT, seconds).</summary>
    public TimeSpan JoinTimeout { get; init; } = DefaultJoinTimeout;

    /// <summary>How long rank 0 keeps the store up at the end, waiting for the other ranks to leave it.</summary>
    public TimeSpan LeaveTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The store client's default timeout for the session's own gets and waits.</summary>
    public TimeSpan StoreTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>
    /// TORCHELASTIC_USE_AGENT_STORE=True: rank 0's elastic agent already serves the store (for every restart round),
    /// so rank 0 connects to it like the others instead of serving it.
    /// </summary>
    public bool UseAgentStore { get; init; }

    public const string UseAgentStoreVariable = "TORCHELASTIC_USE_AGENT_STORE";

    public static RendezvousOptions FromEnvironment() =>
        FromEnvironment(new Dictionary<string, string?>
        {
            ["TRAINER_JOIN_TIMEOUT"] = Environment.GetEnvironmentVariable("TRAINER_JOIN_TIMEOUT"),
            [UseAgentStoreVariable] = Environment.GetEnvironmentVariable(UseAgentStoreVariable),
        });

    /// <exception cref="ContractException">TRAINER_JOIN_TIMEOUT is not a positive number of seconds, or TORCHELASTIC_USE_AGENT_STORE not a boolean.</exception>
    public static RendezvousOptions FromEnvironment(IReadOnlyDictionary<string, string?> env)
    {
        var useAgentStore = false;
        if (env.TryGetValue(UseAgentStoreVariable, out var agentStore) && !string.IsNullOrWhiteSpace(agentStore) && !bool.TryParse(agentStore, out useAgentStore))
            throw new ContractException($"{UseAgentStoreVariable}='{agentStore}' is not True or False; the elastic agent sets it for its workers, leave it unset otherwise.");
        if (!env.TryGetValue("TRAINER_JOIN_TIMEOUT", out var text) || string.IsNullOrWhiteSpace(text))
            return new RendezvousOptions { UseAgentStore = useAgentStore };
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > 7 * 24 * 3600)
            throw new ContractException($"TRAINER_JOIN_TIMEOUT='{text}' is not a positive number of seconds; set it to how long ranks may take to join (e.g. 300) or unset it.");
        return new RendezvousOptions { JoinTimeout = TimeSpan.FromSeconds(seconds), UseAgentStore = useAgentStore };
    }
}

/// <summary>
/// Brings the ranks of one restart round together (torchrun's static rendezvous over a TCPStore): rank 0 serves
/// the store on MASTER_PORT, every rank connects to MASTER_ADDR:MASTER_PORT, claims its rank, counts itself in,
/// and checks that everyone agrees on WORLD_SIZE and the run id. All keys live under "rdzv/{restart}/", so a
/// later round never reads an earlier round's keys.
/// </summary>
public static class Rendezvous
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan ConnectAttemptTimeout = TimeSpan.FromSeconds(10);
    private const string Agreed = "ok";

    /// <exception cref="ContractException">Ranks disagree, two processes claim one rank, or the secrets differ.</exception>
    /// <exception cref="TimeoutException">The store or some rank did not show up within the join timeout.</exception>
    public static async Task<RendezvousSession> JoinAsync(DistributedContract contract, RendezvousOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan Remaining() => TimeSpan.FromTicks(Math.Max(0, (options.JoinTimeout - clock.Elapsed).Ticks));
        var prefix = $"rdzv/{contract.RestartCount}/";
        var master = $"{contract.MasterAddr}:{contract.MasterPort}";

        StoreServer? server = null;
        StoreClient? client = null;
        var arrived = false;
        try
        {
            IPAddress advertise;
            if (contract.IsMaster)
            {
                (advertise, var bind) = await MasterStore.ResolveAsync(contract, cancellationToken);
                // Under an elastic agent, rank 0's agent serves the store for every restart round.
                if (!options.UseAgentStore)
                    server = MasterStore.Start(contract, bind, logger);
            }
            else
                advertise = IPAddress.None;

            client = await ConnectAsync(contract, options, Remaining, logger, cancellationToken);
            if (!contract.IsMaster)
                advertise = client.LocalEndPoint.Address.IsIPv4MappedToIPv6 ? client.LocalEndPoint.Address.MapToIPv4() : client.LocalEndPoint.Address;

            // Claim the rank: a second process with the same RANK finds the key taken by someone else.
            var self = new RankInfo(contract.WorldSize, contract.RunId, $"pid {Environment.ProcessId} on {Environment.MachineName} ({Guid.NewGuid():N})");
            var ranks = Ranks(client, contract);
            var claimed = RankInfo.Parse(await ranks.ClaimAsync(contract.Rank, self.ToBytes(), cancellationToken));
            if (claimed.Process != self.Process)
                throw new ContractException($"RANK={contract.Rank} is already taken by {claimed.Process} in restart round {contract.RestartCount}; give every process a distinct RANK (0..{contract.WorldSize - 1}).");

            await ranks.CountAsync("arrived", cancellationToken);
            arrived = true;
            FaultInjection.StrikeIfArmed(FaultPoint.Rendezvous);

            if (!contract.IsMaster)
            {
                var master0 = RankInfo.Parse(await ranks.ClaimOfAsync(0, Remaining(), cancellationToken));
                if (Disagreement(0, master0, contract.Rank, self) is { } mismatch)
                    throw new ContractException(mismatch);
            }

            try
            {
                await ranks.WaitForCountAsync("arrived", Remaining(), cancellationToken: cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException(await DescribeMissingRanksAsync(ranks, contract, options.JoinTimeout, cancellationToken));
            }

            string verdict;
            if (contract.IsMaster)
            {
                var disagreements = new List<string>();
                for (var rank = 1; rank < contract.WorldSize; rank++)
                {
                    var other = RankInfo.Parse(await ranks.ClaimOfAsync(rank, Remaining(), cancellationToken));
                    if (Disagreement(0, self, rank, other) is { } mismatch)
                        disagreements.Add(mismatch);
                }
                verdict = disagreements.Count == 0 ? Agreed : string.Join(" ", disagreements);
                await ranks.Store.SetAsync("verdict", Encoding.UTF8.GetBytes(verdict), cancellationToken);
            }
            else
                verdict = Encoding.UTF8.GetString(await ranks.Store.GetAsync("verdict", Remaining(), cancellationToken));
            if (verdict != Agreed)
                throw new ContractException(verdict);

            var session = new RendezvousSession(contract, options, client, server, advertise, prefix, clock.Elapsed, logger);
            logger.LogInformation("rendezvous: rank {Rank}/{WorldSize} joined {Master} in {Seconds:0.00} s", contract.Rank, contract.WorldSize, master, clock.Elapsed.TotalSeconds);
            return session;
        }
        catch
        {
            // Cancelled (Ctrl+C): release at once instead of waiting for the other ranks to leave.
            var leaveTimeout = cancellationToken.IsCancellationRequested ? TimeSpan.Zero : options.LeaveTimeout;
            await AbandonAsync(client, server, contract, leaveTimeout, arrived, logger);
            throw;
        }
    }

    /// <summary>The workers of restart round TORCHELASTIC_RESTART_COUNT, under "rdzv/{round}/" (the session's <see cref="RendezvousSession.KeyPrefix"/>).</summary>
    internal static StoreGroup Ranks(IStore store, DistributedContract contract) => new(new PrefixStore($"rdzv/{contract.RestartCount}", store), contract.WorldSize);

    /// <summary>Connects with exponential back-off until the join deadline: rank 0 may still be starting.</summary>
    internal static async Task<StoreClient> ConnectAsync(DistributedContract contract, RendezvousOptions options, Func<TimeSpan> remaining, ILogger logger,
        CancellationToken cancellationToken)
    {
        var delay = FirstRetryDelay;
        var attempt = 0;
        while (true)
        {
            attempt++;
            var attemptTimeout = remaining() < ConnectAttemptTimeout ? remaining() : ConnectAttemptTimeout;
            var clientOptions = new StoreClientOptions { Secret = contract.RunSecret, Timeout = options.StoreTimeout, ConnectTimeout = attemptTimeout };
            try
            {
                return await StoreClient.ConnectAsync(contract.MasterAddr, contract.MasterPort, clientOptions, cancellationToken);
            }
            catch (StoreAuthenticationException ex)
            {
                throw new ContractException($"TRAINER_RUN_SECRET: {ex.Message}");
            }
            catch (Exception ex) when (ex is IOException or SocketException or TimeoutException)
            {
                if (remaining() <= TimeSpan.Zero)
                    throw new TimeoutException(
                        $"rank {contract.Rank} could not reach the store at {contract.MasterAddr}:{contract.MasterPort} within {options.JoinTimeout.TotalSeconds:0.###} s " +
                        $"({attempt} attempts, last: {ex.Message}); check MASTER_ADDR and MASTER_PORT, and that rank 0 is running.", ex);
                if (attempt == 1)
                    logger.LogInformation("rendezvous: rank {Rank} waiting for the store at {Host}:{Port} ({Reason})", contract.Rank, contract.MasterAddr, contract.MasterPort, ex.Message);
                var pause = delay < remaining() ? delay : remaining();
                await Task.Delay(pause, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(MaxRetryDelay.Ticks, delay.Ticks * 2));
            }
        }
    }

    private static async Task<string> DescribeMissingRanksAsync(StoreGroup ranks, DistributedContract contract, TimeSpan joinTimeout, CancellationToken cancellationToken)
    {
        var missing = await ranks.MissingAsync(16, cancellationToken);
        var listed = string.Join(", ", missing.Take(16)) + (missing.Count > 16 ? ", …" : "");
        return $"rendezvous timed out after {joinTimeout.TotalSeconds:0.###} s: rank(s) {listed} of WORLD_SIZE={contract.WorldSize} never arrived at " +
               $"{contract.MasterAddr}:{contract.MasterPort}; start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise TRAINER_JOIN_TIMEOUT.";
    }

    private static string? Disagreement(int rankA, RankInfo a, int rankB, RankInfo b)
    {
        if (a.WorldSize != b.WorldSize)
            return $"rank {rankB} has WORLD_SIZE={b.WorldSize} but rank {rankA} has WORLD_SIZE={a.WorldSize}; start every rank with the same WORLD_SIZE.";
        if (a.RunId != b.RunId)
            return $"rank {rankB} has TORCHELASTIC_RUN_ID={b.RunId} but rank {rankA} has TORCHELASTIC_RUN_ID={a.RunId}; start every rank with the same TORCHELASTIC_RUN_ID.";
        return null;
    }

    /// <summary>After a failed join: let the ranks that got in read what they need, then release everything.</summary>
    private static async Task AbandonAsync(StoreClient? client, StoreServer? server, DistributedContract contract, TimeSpan leaveTimeout,
        bool arrived, ILogger logger)
    {
        if (client is not null)
            await RendezvousSession.LeaveAsync(client, server, contract, leaveTimeout, arrived, logger);
        if (server is not null)
            await server.DisposeAsync();
    }

    internal sealed record RankInfo(int WorldSize, string RunId, string Process)
    {
        public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, TrainerJson.Default.RankInfo);

        public static RankInfo Parse(byte[] bytes)
        {
            try
            {
                return JsonSerializer.Deserialize(bytes, TrainerJson.Default.RankInfo) ?? throw new JsonException("null");
            }
            catch (JsonException)
            {
                throw new StoreException($"a rendezvous record in the store is not valid ({bytes.Length} bytes); is another program using MASTER_PORT?");
            }
        }
    }
}
