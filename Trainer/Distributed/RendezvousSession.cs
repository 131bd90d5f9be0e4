using System.Net;
using Microsoft.Extensions.Logging;
using Trainer.Distributed.Store;

namespace Trainer.Distributed;

/// <summary>
/// A joined rendezvous: the agreed world, a connection to the shared store and, on rank 0, the store itself.
/// Disposing leaves the rendezvous; rank 0 keeps serving until every rank has left (or the leave timeout passes).
/// </summary>
public sealed class RendezvousSession : IAsyncDisposable
{
    private readonly RendezvousOptions _options;
    private readonly StoreClient _client;
    private readonly StoreServer? _server;
    private readonly ILogger _logger;
    private int _disposed;

    internal RendezvousSession(DistributedContract contract, RendezvousOptions options, StoreClient client, StoreServer? server, IPAddress advertiseAddress,
        string keyPrefix, TimeSpan joinTime, ILogger logger)
    {
        Contract = contract;
        _options = options;
        _client = client;
        _server = server;
        _logger = logger;
        AdvertiseAddress = advertiseAddress;
        KeyPrefix = keyPrefix;
        JoinTime = joinTime;
    }

    public DistributedContract Contract { get; }

    /// <summary>The store every rank shares; use keys under <see cref="KeyPrefix"/>.</summary>
    public IStore Store => _client;

    /// <summary>Where the other ranks can reach this rank: the resolved MASTER_ADDR on rank 0, else the local address of the store connection.</summary>
    public IPAddress AdvertiseAddress { get; }

    /// <summary>"rdzv/{restart}/": the namespace of this restart round in the store.</summary>
    public string KeyPrefix { get; }

    /// <summary>From the start of the join until every rank had arrived and agreed.</summary>
    public TimeSpan JoinTime { get; }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await LeaveAsync(_client, _server, Contract, _options.LeaveTimeout, counted: true, _logger);
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>
    /// Leaves at once without waiting for the other ranks, after a failure: they are failing too, and rank 0 must not
    /// hold the run open for the leave timeout. Closing the store also tells ranks still blocked on it.
    /// </summary>
    public async ValueTask AbortAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _client.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>
    /// Counts this rank out (when it was counted in) and closes its client; rank 0 first waits until as many ranks
    /// have left as arrived, so nobody loses the store while still reading from it. Never throws.
    /// </summary>
    internal static async Task LeaveAsync(StoreClient client, StoreServer? server, DistributedContract contract, TimeSpan timeout, bool counted,
        ILogger logger)
    {
        try
        {
            using var deadline = new CancellationTokenSource(timeout);
            var ranks = Rendezvous.Ranks(client, contract);
            if (counted)
                await ranks.CountAsync("left", deadline.Token);
            if (server is not null)
            {
                var arrived = await ranks.CountOfAsync("arrived", deadline.Token);
                if (arrived > 0)
                    await ranks.WaitForCountAsync("left", timeout, arrived, deadline.Token);
            }
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            logger.LogWarning("rendezvous: rank {Rank} stops waiting for the other ranks to leave after {Seconds:0.###} s", contract.Rank, timeout.TotalSeconds);
        }
        catch (Exception ex)
        {
            logger.LogDebug("rendezvous: rank {Rank} could not leave cleanly: {Reason}", contract.Rank, ex.Message);
        }
        finally
        {
            await client.DisposeAsync();
        }
    }
}
