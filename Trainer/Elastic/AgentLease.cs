using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Trainer.Distributed;
using Trainer.Distributed.Store;

namespace Trainer.Elastic;

/// <summary>
/// Liveness of the agents themselves (a dead worker is seen by its own agent; a dead agent needs this). Every agent
/// but rank 0's adds to its heartbeat counter in the store every interval; rank 0's agent, whose process serves
/// the store, watches the counters and declares an agent lost when its counter has not moved for the lease
/// timeout, which ends the run: a static world cannot restart without one of its ranks. An agent whose heartbeat
/// the store does not answer within the lease timeout has lost rank 0's agent.
/// </summary>
internal sealed class AgentLease : IAsyncDisposable
{
    private readonly IStore _store;
    private readonly DistributedContract _contract;
    private readonly ElasticOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<string> _storeLost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private int _round;
    private int _lastRound;

    private AgentLease(IStore store, DistributedContract contract, ElasticOptions options, ILogger logger)
    {
        _store = store;
        _contract = contract;
        _options = options;
        _logger = logger;
        _loop = contract.IsMaster ? WatchAsync() : BeatAsync();
    }

    /// <summary>On agents other than rank 0's: completes, with the reason, when the store (rank 0's agent) stopped answering.</summary>
    public Task<string> StoreLost => _storeLost.Task;

    /// <summary>The round this agent is in; a lost agent ends this round and every later one up to <see cref="LastRound"/>.</summary>
    public int Round
    {
        get => Volatile.Read(ref _round);
        set => Volatile.Write(ref _round, value);
    }

    /// <summary>The last round the agents may start (the first plus --max-restarts).</summary>
    public int LastRound
    {
        get => Volatile.Read(ref _lastRound);
        set => Volatile.Write(ref _lastRound, value);
    }

    public static AgentLease Start(IStore store, DistributedContract contract, ElasticOptions options, ILogger logger) => new(store, contract, options, logger);

    internal static string HeartbeatKey(int rank) => $"agent/heartbeat/{rank}";

    private async Task BeatAsync()
    {
        await Task.Yield();
        while (!_stop.IsCancellationRequested)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            deadline.CancelAfter(_options.LeaseTimeout);
            try
            {
                await _store.AddAsync(HeartbeatKey(_contract.Rank), 1, deadline.Token);
                await Task.Delay(_options.HeartbeatInterval, _stop.Token);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                _storeLost.TrySetResult($"the store at {_contract.MasterAddr}:{_contract.MasterPort} did not answer a heartbeat within {_options.LeaseTimeout.TotalSeconds:0.#} s");
                return;
            }
            catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
            {
                _storeLost.TrySetResult(e.Message);
                return;
            }
        }
    }

    private async Task WatchAsync()
    {
        await Task.Yield();
        var worldSize = _contract.WorldSize;
        var counts = new long[worldSize];
        var movedAt = Enumerable.Repeat(Stopwatch.GetTimestamp(), worldSize).ToArray();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                for (var rank = 1; rank < worldSize; rank++)
                {
                    var count = await _store.AddAsync(HeartbeatKey(rank), 0, _stop.Token);
                    if (count != counts[rank])
                    {
                        counts[rank] = count;
                        movedAt[rank] = Stopwatch.GetTimestamp();
                    }
                    else if (Stopwatch.GetElapsedTime(movedAt[rank]) > _options.LeaseTimeout)
                    {
                        await DeclareLostAsync(rank, $"no heartbeat for {Stopwatch.GetElapsedTime(movedAt[rank]).TotalSeconds:0.#} s; its process or host is gone");
                        return;
                    }
                }
                await Task.Delay(_options.HeartbeatInterval, _stop.Token);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
        {
            _logger.LogWarning("agent: rank 0 stopped watching the other agents: {Reason}", e.Message);
        }
    }

    /// <summary>
    /// Ends the current round and every later one with <see cref="RoundOutcome.Lost"/>, so no agent starts another: the
    /// outcome of each round, and its verdict, which agents settling a failed round wait for (the lost one never reports).
    /// </summary>
    private async Task DeclareLostAsync(int rank, string why)
    {
        var outcome = RoundOutcome.Lost(rank, why).ToBytes();
        _logger.LogError("agent: rank {Rank}'s agent is lost ({Why}); ending the run", rank, why);
        for (var round = Round; round <= LastRound; round++)
        {
            var agents = ElasticAgent.RoundGroup(_store, round, _contract.WorldSize);
            await agents.AgreeAsync(ElasticAgent.OverKey, outcome, _stop.Token);
            await agents.AgreeAsync(ElasticAgent.VerdictKey, outcome, _stop.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
