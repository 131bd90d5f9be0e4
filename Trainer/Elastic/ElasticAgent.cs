using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Trainer.Distributed;
using Trainer.Distributed.Store;
using Trainer.Faults;
using Trainer.Runtime;
using Trainer.Watchdog;

namespace Trainer.Elastic;

/// <summary>
/// torchrun's elastic agent for one rank: `Trainer train` runs as the agent and the training itself runs in a
/// worker, this same program started again as `Trainer worker` with the same options. When any rank's worker fails, every agent
/// stops its worker and the whole group starts the next restart round (TORCHELASTIC_RESTART_COUNT + 1, a fresh
/// rendezvous, --resume from the last intact checkpoint), up to <see cref="ElasticOptions.MaxRestarts"/> times.
/// Rank 0's agent serves the store for all rounds, so it outlives every worker. The agents agree on how a round
/// ended through one store key per round ("agent/{round}/over"; the first writer wins): "done" once every worker
/// exited 0, else the first failure. Failures a restart cannot cure (exit codes 2, 3, 4, an interrupt) end the run
/// on every rank with that exit code, even when another rank's consequent failure was seen first (see
/// <see cref="SettleAsync"/>); a lost agent (see <see cref="AgentLease"/>) ends it with 1.
/// </summary>
internal sealed class ElasticAgent
{
    public const string AgentPidVariable = "TRAINER_AGENT_PID";
    public const string MaxRestartsVariable = "TORCHELASTIC_MAX_RESTARTS";
    public const string RestartCountVariable = LaunchContract.RestartCount;

    private static readonly Task<string> Never = new TaskCompletionSource<string>().Task;

    /// <summary>How much longer than the stop grace an agent waits for the others' reports of a failed round.</summary>
    private static readonly TimeSpan SettleMargin = TimeSpan.FromSeconds(10);


    /// <summary>How often a settling agent looks for a verdict while it waits for the reports.</summary>
    private static readonly TimeSpan SettleSlice = TimeSpan.FromMilliseconds(250);

    private readonly DistributedContract _contract;
    private readonly RendezvousOptions _rendezvous;
    private readonly ElasticOptions _options;
    private readonly string _program;
    private readonly IReadOnlyList<string> _arguments;
    private readonly ILogger _logger;
    private readonly ElasticMetrics _metrics;
    private RoundOutcome? _lastOutcome;

    internal ElasticAgent(DistributedContract contract, RendezvousOptions rendezvous, ElasticOptions options, string program, IReadOnlyList<string> arguments,
        ILogger logger, ElasticMetrics metrics)
    {
        _contract = contract;
        _rendezvous = rendezvous;
        _options = options;
        _program = program;
        _arguments = arguments;
        _logger = logger;
        _metrics = metrics;
    }

    internal const string OverKey = "over";
    internal const string VerdictKey = "verdict";
    private const string DoneKey = "done";

    /// <summary>The keys of restart round <paramref name="round"/>: "agent/{round}/…".</summary>
    internal static PrefixStore RoundStore(IStore store, int round) => new($"agent/{round}", store);

    private static string ExitKey(int rank) => $"exit/{rank}";


    private StoreGroup Agents(IStore store) => new(new PrefixStore("agent", store), _contract.WorldSize);

    /// <summary>The agents of restart round <paramref name="round"/>, agreeing through its keys.</summary>
    internal static StoreGroup RoundGroup(IStore store, int round, int worldSize) => new(RoundStore(store, round), worldSize);

    private StoreGroup Round(IStore store, int round) => RoundGroup(store, round, _contract.WorldSize);

    /// <summary>Runs this rank's agent from the environment contract; each round's worker runs <paramref name="worker"/>.</summary>
    public static async Task<int> RunAsync(ElasticOptions options, (string Program, IReadOnlyList<string> Arguments) worker, CancellationToken cancellationToken)
    {
        DistributedContract contract;
        RendezvousOptions rendezvous;
        try
        {
            (contract, rendezvous, _) = DistributedSettings.FromEnvironment();
            FaultInjection.Parse(Environment.GetEnvironmentVariable(FaultInjection.Variable));
            _ = NativeAllocator.Worker;
        }
        catch (ContractException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadConfiguration;
        }

        using var host = TrainerHost.Create();
        await host.StartAsync(cancellationToken);
        using var metrics = new ElasticMetrics(contract.Rank);
        var agent = new ElasticAgent(contract, rendezvous, options, worker.Program, worker.Arguments, host.Logger("Trainer.Agent"), metrics);
        try
        {
            return await agent.RunAsync(cancellationToken);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    internal async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        StoreServer? server = null;
        StoreClient? store = null;
        AgentLease? lease = null;
        var leave = false;
        try
        {
            // A world of one needs no store: its rounds are this agent's alone.
            if (_contract.WorldSize == 1)
                return await RoundsAsync(null, null, cancellationToken);
            var clock = Stopwatch.StartNew();
            TimeSpan Remaining() => TimeSpan.FromTicks(Math.Max(0, (_rendezvous.JoinTimeout - clock.Elapsed).Ticks));
            if (_contract.IsMaster)
            {
                var (_, bind) = await MasterStore.ResolveAsync(_contract, cancellationToken);
                server = MasterStore.Start(_contract, bind, _logger);
            }
            store = await Rendezvous.ConnectAsync(_contract, _rendezvous, Remaining, _logger, cancellationToken);
            await JoinAsync(store, Remaining, cancellationToken);
            lease = AgentLease.Start(store, _contract, _options, _logger);
            var exitCode = await RoundsAsync(store, lease, cancellationToken);
            // Without rank 0's agent there is no store to leave; a lost other agent is not waited for (see LeaveAsync).
            leave = _lastOutcome is not { Kind: RoundOutcomeKind.Lost, Rank: 0 };
            return exitCode;
        }
        catch (ContractException e)
        {
            return Fail(ExitCodes.BadConfiguration, e.Message);
        }
        catch (Exception e) when (e is TimeoutException or IOException or StoreException or SocketException)
        {
            return Fail(ExitCodes.Failed, e.Message);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return Fail(ExitCodes.Failed, $"could not start the worker: {e.Message}");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return Fail(ExitCodes.Interrupted, "interrupted before the workers started");
        }
        finally
        {
            if (lease is not null)
                await lease.DisposeAsync();
            if (store is not null)
            {
                if (leave)
                    await LeaveAsync(store);
                await store.DisposeAsync();
            }
            if (server is not null)
                await server.DisposeAsync();
        }
    }

    /// <summary>The agents' own rendezvous: every rank claims its RANK and waits until all WORLD_SIZE agents are there.</summary>
    private async Task JoinAsync(IStore store, Func<TimeSpan> remaining, CancellationToken cancellationToken)
    {
        var self = $"pid {Environment.ProcessId} on {Environment.MachineName} ({Guid.NewGuid():N})";
        var agents = Agents(store);
        var claimed = Encoding.UTF8.GetString(await agents.ClaimAsync(_contract.Rank, Encoding.UTF8.GetBytes(self), cancellationToken));
        if (claimed != self)
            throw new ContractException($"RANK={_contract.Rank} is already taken by the agent {claimed}; give every process a distinct RANK (0..{_contract.WorldSize - 1}).");
        await agents.CountAsync("joined", cancellationToken);
        try
        {
            await agents.WaitForCountAsync("joined", remaining(), cancellationToken: cancellationToken);
        }
        catch (TimeoutException)
        {
            var missing = await agents.MissingAsync(15, cancellationToken);
            throw new TimeoutException(
                $"the agents of rank(s) {string.Join(", ", missing)} of WORLD_SIZE={_contract.WorldSize} never arrived at {_contract.MasterAddr}:{_contract.MasterPort} " +
                $"within {_rendezvous.JoinTimeout.TotalSeconds:0.###} s; start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise TRAINER_JOIN_TIMEOUT.");
        }
        _logger.LogInformation("agent: rank {Rank}/{WorldSize}: all agents joined; restarts allowed: {MaxRestarts}", _contract.Rank, _contract.WorldSize, _options.MaxRestarts);
    }

    private async Task<int> RoundsAsync(StoreClient? store, AgentLease? lease, CancellationToken cancellationToken)
    {
        var first = _contract.RestartCount;
        var last = first + _options.MaxRestarts;
        for (var round = first; ; round++)
        {
            if (lease is not null)
                (lease.Round, lease.LastRound) = (round, last);
            _metrics.RoundStarted(round);
            var outcome = await RunRoundAsync(round, resume: round > first, store, lease, cancellationToken);
            _lastOutcome = outcome;
            switch (outcome.Kind)
            {
                case RoundOutcomeKind.Done:
                    _logger.LogInformation("agent: rank {Rank}: round {Round}: {Outcome}", _contract.Rank, round, outcome.Message);
                    return ExitCodes.Success;
                case RoundOutcomeKind.Failed when round < last:
                    _logger.LogWarning("agent: rank {Rank}: round {Round} failed: {Outcome}; restarting every rank from the last checkpoint (restart {Restart} of at most {MaxRestarts})",
                        _contract.Rank, round, outcome.Message, round - first + 1, _options.MaxRestarts);
                    continue;
                case RoundOutcomeKind.Failed:
                    return Fail(ExitCodes.Failed, $"round {round} failed: {outcome.Message}; giving up after {_options.MaxRestarts} restart(s) (--max-restarts)");
                case RoundOutcomeKind.Final:
                    return Fail(outcome.ExitCode, $"round {round} failed: {outcome.Message}; not restarting, since a restart would meet the same problem");
                default:
                    return Fail(ExitCodes.Failed, $"round {round}: {outcome.Message}; the run cannot go on");
            }
        }
    }

    /// <summary>One round with the worker's progress file; after a failure, the flight record of every rank.</summary>
    private async Task<RoundOutcome> RunRoundAsync(int round, bool resume, StoreClient? store, AgentLease? lease, CancellationToken cancellationToken)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"dotnet-ddp-progress-{Environment.ProcessId}-{round}");
        try
        {
            using var progress = ProgressFile.Create(path);
            var outcome = await RunWorkerAsync(round, resume, store, lease, progress, cancellationToken);
            if (outcome.Kind != RoundOutcomeKind.Done)
                await FlightRecorder.RecordAsync(store is null ? null : RoundStore(store, round), _contract, round, progress, _options.OutputFolder, _logger);
            return outcome;
        }
        finally
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    /// <summary>Runs one worker until the round has an outcome, then makes sure the worker is gone.</summary>
    private async Task<RoundOutcome> RunWorkerAsync(int round, bool resume, StoreClient? store, AgentLease? lease, ProgressFile progress, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> arguments = resume && !_arguments.Contains("--resume") ? [.. _arguments, "--resume"] : _arguments;
        using var worker = WorkerProcess.Start(_program, arguments, WorkerEnvironment(round, progress.Path));
        using var watch = HangWatch.Start(progress, worker.Id, _options.HangTimeout);
        var clock = Stopwatch.StartNew();
        _logger.LogInformation("agent: rank {Rank}: round {Round}: worker pid {Pid} started{Resume}, malloc: {Malloc}", _contract.Rank, round, worker.Id, resume ? " (--resume)" : "", NativeAllocator.Worker.Description);

        var over = store is null ? new TaskCompletionSource<RoundOutcome>().Task : WaitOverAsync(store, round);
        var storeLost = lease?.StoreLost ?? Never;

        // The worker ended without being told to: logged, and its outcome (done, or a failure of this rank).
        RoundOutcome ExitedByItself(int exitCode)
        {
            _logger.LogInformation("agent: rank {Rank}: round {Round}: worker pid {Pid} exited with {ExitCode} after {Seconds:0.0} s",
                _contract.Rank, round, worker.Id, ExitCodes.Describe(exitCode), clock.Elapsed.TotalSeconds);
            return exitCode == ExitCodes.Success
                ? RoundOutcome.Done(1)
                : RoundOutcome.Failed(_contract.Rank, exitCode, interrupted: cancellationToken.IsCancellationRequested);
        }

        var interrupted = Interruption(cancellationToken);
        Task<string> hung = watch.Hung;
        Task<int>? exited = worker.Exited;
        RoundOutcome own = RoundOutcome.Stopped(_contract.Rank);
        while (true)
        {
            List<Task> watched = [over, storeLost, interrupted, hung];
            if (exited is not null) watched.Add(exited);
            var next = await Task.WhenAny(watched);
            if (next == over || next == storeLost)
                break;

            RoundOutcome? mine;
            if (next == hung)
            {
                // Tell the others first, then stop it: SIGTERM, and SIGKILL once the grace has passed (a frozen process ignores SIGTERM).
                own = mine = RoundOutcome.Hung(_contract.Rank, worker.Id, Environment.MachineName, await hung);
                hung = Never;
                _logger.LogError("agent: rank {Rank}: round {Round}: {Outcome}; stopping it", _contract.Rank, round, mine.Message);
                Console.Error.WriteLine($"error: rank {_contract.Rank}: {mine.Message}; stopping it");
                if (store is not null)
                    await TryPublishAsync(store, round, mine);
                await worker.StopAsync(_options.StopGrace);
                if (store is null)
                    return mine;
                exited = null;
                continue;
            }
            if (next == interrupted)
            {
                // Tell the others first: this process may be ended soon after the signal.
                interrupted = Never;
                own = mine = RoundOutcome.Failed(_contract.Rank, ExitCodes.Interrupted, interrupted: true);
                if (store is null)
                {
                    await worker.StopAsync(_options.StopGrace);
                    return mine;
                }
                await TryPublishAsync(store, round, mine);
                await worker.StopAsync(_options.StopGrace);
                exited = null;
                continue;
            }
            else
            {
                own = ExitedByItself(await worker.Exited);
                exited = null;
                mine = own.Kind == RoundOutcomeKind.Done ? null : own;
            }
            if (store is null)
                return mine ?? RoundOutcome.Done(1);
            try
            {
                await PublishAsync(store, round, mine);
            }
            catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
            {
                return StoreGone(e.Message);
            }
        }

        RoundOutcome outcome;
        if (storeLost.IsCompleted)
            outcome = StoreGone(await storeLost);
        else
        {
            try
            {
                outcome = await over;
            }
            catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
            {
                outcome = StoreGone(e.Message);
            }
        }
        if (!worker.HasExited && outcome.Kind == RoundOutcomeKind.Failed)
        {
            // A worker on the other side of a broken collective fails by itself within a second; one that is failing
            // for its own reason, the cause of it all, must get to say so before it is stopped.
            await Task.WhenAny(worker.Exited, Task.Delay(_options.ExitGrace, CancellationToken.None));
            if (worker.Exited.IsCompletedSuccessfully)
                own = ExitedByItself(worker.Exited.Result);
        }
        if (!worker.HasExited)
        {
            _logger.LogInformation("agent: rank {Rank}: round {Round}: stopping worker pid {Pid}: {Outcome}", _contract.Rank, round, worker.Id, outcome.Message);
            await worker.StopAsync(_options.StopGrace);
        }
        // A worker that was already exiting when it was stopped: its reason counts. (The stop signal itself leads to
        // exit code 130 at most, never to 2, 3 or 4.)
        if (own.Kind == RoundOutcomeKind.Stopped && worker.Exited.Result is var code and not ExitCodes.Interrupted && ExitCodes.IsFinal(code))
            own = RoundOutcome.Failed(_contract.Rank, code);
        return outcome.Kind == RoundOutcomeKind.Failed && store is not null ? await SettleAsync(store, round, outcome, own) : outcome;
    }

    /// <summary>
    /// The first failure of a round is often only a consequence: rank 0's worker meets a full disk (exit 4) and closes
    /// its sockets, rank 1's worker fails on the broken collective (exit 1) and its agent reports first. Restarting
    /// then would meet the full disk again. So after a restartable failure every agent reports its own worker's
    /// outcome, waits for the others' reports (up to the stop grace plus a margin), and the lowest rank whose worker
    /// failed in a way a restart cannot cure decides the round. The first agent to decide writes the verdict; every
    /// agent reads it back, so all of them act alike even when a report came too late for some.
    /// </summary>
    private async Task<RoundOutcome> SettleAsync(IStore store, int round, RoundOutcome first, RoundOutcome own)
    {
        try
        {
            var agents = Round(store, round);
            await agents.Store.SetAsync(ExitKey(_contract.Rank), own.ToBytes());
            var keys = Enumerable.Range(0, _contract.WorldSize).Select(ExitKey).ToArray();
            var waited = Stopwatch.StartNew();
            // A verdict already there (another agent decided, or rank 0's agent declared one lost) ends the wait early.
            while (!await agents.Store.CheckAsync(VerdictKey))
            {
                try
                {
                    await agents.Store.WaitAsync(keys, SettleSlice);
                    break;
                }
                catch (TimeoutException) when (waited.Elapsed < _options.StopGrace + SettleMargin)
                {
                }
                catch (TimeoutException)
                {
                    _logger.LogWarning("agent: rank {Rank}: round {Round}: not every rank reported how its worker ended; deciding on those that did", _contract.Rank, round);
                    break;
                }
            }
            var verdict = first;
            foreach (var key in keys)
            {
                if (!await agents.Store.CheckAsync(key)) continue;
                var report = RoundOutcome.Parse(await agents.Store.GetAsync(key));
                if (report.Kind == RoundOutcomeKind.Final)
                {
                    verdict = report;
                    break;
                }
            }
            return RoundOutcome.Parse(await agents.AgreeAsync(VerdictKey, verdict.ToBytes()));
        }
        catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
        {
            return StoreGone(e.Message);
        }
    }

    private async Task TryPublishAsync(IStore store, int round, RoundOutcome failure)
    {
        try
        {
            await PublishAsync(store, round, failure);
        }
        catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
        {
            _logger.LogDebug("agent: rank {Rank} could not tell the others: {Reason}", _contract.Rank, e.Message);
        }
    }

    /// <summary>This worker's result: a failure ends the round at once; success counts, and the last rank to succeed ends it.</summary>
    private async Task PublishAsync(IStore store, int round, RoundOutcome? failure)
    {
        var agents = Round(store, round);
        if (failure is not null)
            await agents.AgreeAsync(OverKey, failure.ToBytes());
        else if (await agents.CountAsync(DoneKey) == _contract.WorldSize)
            await agents.AgreeAsync(OverKey, RoundOutcome.Done(_contract.WorldSize).ToBytes());
    }

    private static async Task<RoundOutcome> WaitOverAsync(IStore store, int round)
    {
        while (true)
        {
            try
            {
                // A round lasts as long as the training does: wait in slices, each one a bounded store wait.
                return RoundOutcome.Parse(await RoundStore(store, round).GetAsync(OverKey, TimeSpan.FromMinutes(1)));
            }
            catch (TimeoutException)
            {
            }
        }
    }

    private RoundOutcome StoreGone(string reason) =>
        new(RoundOutcomeKind.Lost, 0, ExitCodes.Failed, $"lost rank 0's agent, which serves the store at {_contract.MasterAddr}:{_contract.MasterPort}: {reason}");

    private static Task<string> Interruption(CancellationToken cancellationToken)
    {
        var interrupted = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        cancellationToken.Register(() => interrupted.TrySetResult("interrupted"));
        return interrupted.Task;
    }

    private Dictionary<string, string> WorkerEnvironment(int round, string progressFile) => new()
    {
        [ProgressFile.Variable] = progressFile,
        [RestartCountVariable] = round.ToString(),
        [MaxRestartsVariable] = _options.MaxRestarts.ToString(),
        [AgentPidVariable] = Environment.ProcessId.ToString(),
        [RendezvousOptions.UseAgentStoreVariable] = _contract.WorldSize > 1 ? "True" : "False",
    };

    /// <summary>Counts this agent out; rank 0's waits until the others have read the verdict, so none loses the store early.</summary>
    private async Task LeaveAsync(IStore store)
    {
        try
        {
            using var deadline = new CancellationTokenSource(_options.LeaveTimeout);
            // A lost agent never counts itself out: wait for the others only.
            var leaving = _contract.WorldSize - 1 - (_lastOutcome is { Kind: RoundOutcomeKind.Lost } ? 1 : 0);
            if (_contract.IsMaster)
            {
                if (leaving > 0)
                    await Agents(store).WaitForCountAsync("left", _options.LeaveTimeout, leaving, deadline.Token);
            }
            else
                await Agents(store).CountAsync("left", deadline.Token);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException or StoreException or ObjectDisposedException)
        {
            _logger.LogDebug("agent: rank {Rank} left without the others: {Reason}", _contract.Rank, e.Message);
        }
    }

    private int Fail(int exitCode, string message)
    {
        _logger.LogError("agent: rank {Rank}: {Message}", _contract.Rank, message);
        Console.Error.WriteLine($"error: rank {_contract.Rank}: {message}");
        return exitCode;
    }
}
