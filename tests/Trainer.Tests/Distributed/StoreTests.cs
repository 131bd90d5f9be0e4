using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Distributed.Store;

namespace Trainer.Tests.Distributed;

public sealed class StoreTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly CapturingLogger _log = new();
    private readonly List<StoreClient> _clients = [];
    private StoreServer _server = null!;

    public Task InitializeAsync()
    {
        _server = StoreServer.Start(IPAddress.Loopback, 0, new StoreServerOptions(), _log);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
        await _server.DisposeAsync();
        Assert.DoesNotContain(_log.Lines, line => line.StartsWith("Error", StringComparison.Ordinal));
    }

    private async Task<StoreClient> ConnectAsync(TimeSpan? timeout = null)
    {
        var client = await StoreClient.ConnectAsync("127.0.0.1", _server.Port, new StoreClientOptions { Timeout = timeout ?? Patience });
        lock (_clients)
            _clients.Add(client);
        return client;
    }

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task StoppingWhileConnectionsPourInNeverThrows()
    {
        // A stop that meets a connection accepted a moment before used to throw from DisposeAsync (and so end rank 0's
        // agent with exit code 1 after a successful run).
        for (var round = 0; round < 30; round++)
        {
            var server = StoreServer.Start(IPAddress.Loopback, 0, new StoreServerOptions(), NullLogger.Instance);
            using var stop = new CancellationTokenSource();
            var storm = Task.Run(async () =>
            {
                var open = new List<TcpClient>();
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        var tcp = new TcpClient();
                        open.Add(tcp);
                        try
                        {
                            await tcp.ConnectAsync(IPAddress.Loopback, server.Port);
                        }
                        catch (SocketException)
                        {
                            return; // the server has stopped listening
                        }
                    }
                }
                finally
                {
                    foreach (var tcp in open) tcp.Dispose();
                }
            });
            await Task.Delay(round % 5 * 2);
            await server.DisposeAsync();
            await stop.CancelAsync();
            await storm.WaitAsync(Patience);
        }
    }

    [Fact]
    public async Task ValuesSetByOneClientAreReadByAnother()
    {
        var writer = await ConnectAsync();
        var reader = await ConnectAsync();
        byte[] binary = [0, 255, 1, 254, 0];

        await writer.SetAsync("text", Bytes("héllo"));
        await writer.SetAsync("binary", binary);
        await writer.SetAsync("empty", ReadOnlyMemory<byte>.Empty);
        await writer.SetAsync("text", Bytes("overwritten"));

        Assert.Equal("overwritten", Encoding.UTF8.GetString(await reader.GetAsync("text")));
        Assert.Equal(binary, await reader.GetAsync("binary"));
        Assert.Empty(await reader.GetAsync("empty"));
    }

    [Fact]
    public async Task GetWaitsForALaterSet()
    {
        var reader = await ConnectAsync();
        var writer = await ConnectAsync();

        var pending = reader.GetAsync("late");
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await writer.SetAsync("late", Bytes("arrived"));

        Assert.Equal("arrived", Encoding.UTF8.GetString(await pending.WaitAsync(Patience)));
    }

    [Fact]
    public async Task ManyWaitersOnOneKeyAllWake()
    {
        var readers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => ConnectAsync()));
        var pending = readers.SelectMany(reader => new[] { reader.GetAsync("go"), reader.GetAsync("go") }).ToArray();

        await (await ConnectAsync()).SetAsync("go", Bytes("now"));

        foreach (var value in await Task.WhenAll(pending).WaitAsync(Patience))
            Assert.Equal("now", Encoding.UTF8.GetString(value));
    }

    [Fact]
    public async Task AddFromManyClientsIsAtomic()
    {
        const int clients = 8, addsPerClient = 100;
        var stores = await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => ConnectAsync()));

        var results = await Task.WhenAll(stores.Select(store => Task.Run(async () =>
        {
            var seen = new List<long>();
            for (var i = 0; i < addsPerClient; i++)
                seen.Add(await store.AddAsync("counter", 1));
            return seen;
        })));

        // Every add saw a distinct running total, so none was lost or doubled.
        Assert.Equal(Enumerable.Range(1, clients * addsPerClient).Select(i => (long)i), results.SelectMany(seen => seen).Order());
        Assert.Equal(clients * addsPerClient, await stores[0].AddAsync("counter", 0));
        Assert.Equal(795, await stores[1].AddAsync("counter", -5));
        Assert.Equal("795", Encoding.ASCII.GetString(await stores[2].GetAsync("counter")));
    }

    [Fact]
    public async Task AddToAKeyThatHoldsNoCounterIsRefusedAndTheClientCarriesOn()
    {
        var store = await ConnectAsync();
        await store.SetAsync("name", Bytes("alice"));

        var error = await Assert.ThrowsAsync<StoreException>(() => store.AddAsync("name", 1));

        Assert.Contains("'name'", error.Message);
        Assert.Contains("not a decimal counter", error.Message);
        Assert.Equal(1, await store.AddAsync("other", 1));
    }

    [Fact]
    public async Task CompareSetRaceHasExactlyOneWinner()
    {
        var stores = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ConnectAsync()));

        var outcomes = await Task.WhenAll(stores.Select((store, index) => Task.Run(() => store.CompareSetAsync("leader", ReadOnlyMemory<byte>.Empty, Bytes($"client-{index}")))));

        var winner = Encoding.UTF8.GetString(await stores[0].GetAsync("leader"));
        Assert.All(outcomes, outcome => Assert.Equal(winner, Encoding.UTF8.GetString(outcome)));
        Assert.Matches("^client-[0-7]$", winner);
    }

    [Fact]
    public async Task CompareSetFollowsTheExpectedValue()
    {
        var store = await ConnectAsync();

        Assert.Empty(await store.CompareSetAsync("k", Bytes("anything"), Bytes("v1")));
        Assert.False(await store.CheckAsync("k"));
        Assert.Equal("v1", Encoding.UTF8.GetString(await store.CompareSetAsync("k", ReadOnlyMemory<byte>.Empty, Bytes("v1"))));
        Assert.Equal("v1", Encoding.UTF8.GetString(await store.CompareSetAsync("k", Bytes("wrong"), Bytes("v2"))));
        Assert.Equal("v2", Encoding.UTF8.GetString(await store.CompareSetAsync("k", Bytes("v1"), Bytes("v2"))));
    }

    [Fact]
    public async Task WaitReturnsOnlyWhenEveryKeyExists()
    {
        var waiter = await ConnectAsync();
        var writer = await ConnectAsync();
        await writer.SetAsync("a", Bytes("1"));

        var pending = waiter.WaitAsync(["a", "b", "c"]);
        await writer.SetAsync("c", Bytes("3"));
        await Task.Delay(200);
        Assert.False(pending.IsCompleted);
        await writer.SetAsync("b", Bytes("2"));

        await pending.WaitAsync(Patience);
        await waiter.WaitAsync([]);
    }

    [Fact]
    public async Task ConcurrentRequestsShareOneConnection()
    {
        var store = await ConnectAsync();

        var blocked = store.GetAsync("self");
        Assert.Equal(1, await store.AddAsync("unrelated", 1));
        await store.SetAsync("self", Bytes("done"));

        Assert.Equal("done", Encoding.UTF8.GetString(await blocked.WaitAsync(Patience)));
    }

    [Fact]
    public async Task GetTimesOutPromptlyNamingTheKey()
    {
        var store = await ConnectAsync();
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<TimeoutException>(() => store.GetAsync("never/set", TimeSpan.FromMilliseconds(300)));

        Assert.Contains("'never/set'", error.Message);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), Patience);
        await store.SetAsync("still", Bytes("usable"));
        Assert.Equal("usable", Encoding.UTF8.GetString(await store.GetAsync("still")));
    }

    [Fact]
    public async Task WaitTimeoutNamesOnlyTheMissingKeys()
    {
        var store = await ConnectAsync();
        await store.SetAsync("present", Bytes("x"));

        var error = await Assert.ThrowsAsync<TimeoutException>(() => store.WaitAsync(["present", "missing-1", "missing-2"], TimeSpan.FromMilliseconds(200)));

        Assert.Contains("'missing-1', 'missing-2'", error.Message);
        Assert.DoesNotContain("'present'", error.Message);
    }

    [Fact]
    public async Task TheClientDefaultTimeoutAppliesWhenNoneIsGiven()
    {
        var store = await ConnectAsync(timeout: TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<TimeoutException>(() => store.GetAsync("absent"));

        Assert.Contains("'absent'", error.Message);
        Assert.Contains("0.3 s", error.Message);
    }

    [Fact]
    public async Task InfiniteTimeoutsAreRefused()
    {
        var store = await ConnectAsync();

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.GetAsync("k", Timeout.InfiniteTimeSpan));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.WaitAsync(["k"], TimeSpan.FromDays(30)));
    }

    [Fact]
    public async Task CheckAndDelete()
    {
        var store = await ConnectAsync();

        Assert.False(await store.CheckAsync("k"));
        Assert.False(await store.DeleteAsync("k"));
        await store.SetAsync("k", Bytes("v"));
        Assert.True(await store.CheckAsync("k"));
        Assert.True(await store.DeleteAsync("k"));
        Assert.False(await store.CheckAsync("k"));
        await Assert.ThrowsAsync<TimeoutException>(() => store.GetAsync("k", TimeSpan.FromMilliseconds(100)));
    }

    [Fact]
    public async Task OversizedKeysAndValuesAreRefusedBeforeSending()
    {
        var store = await ConnectAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => store.SetAsync(new string('k', StoreProtocol.MaxKeyBytes + 1), Bytes("v")));
        await Assert.ThrowsAsync<ArgumentException>(() => store.SetAsync("k", new byte[StoreProtocol.MaxValueBytes + 1]));
        await store.SetAsync(new string('k', StoreProtocol.MaxKeyBytes), Bytes("largest key"));
        Assert.True(await store.CheckAsync(new string('k', StoreProtocol.MaxKeyBytes)));
    }

    [Fact]
    public async Task LargeValuesRoundTrip()
    {
        var store = await ConnectAsync();
        var value = new byte[3 * 1024 * 1024 + 7];
        new Random(42).NextBytes(value);

        await store.SetAsync("large", value);

        Assert.Equal(value, await (await ConnectAsync()).GetAsync("large"));
    }

    [Fact]
    public async Task StoppingTheServerFailsPendingCallsInsteadOfHanging()
    {
        var store = await ConnectAsync();
        var pending = store.GetAsync("never", TimeSpan.FromMinutes(5));

        await _server.DisposeAsync();

        var error = await Assert.ThrowsAsync<StoreConnectionLostException>(() => pending.WaitAsync(Patience));
        Assert.Contains($"127.0.0.1:{_server.Port}", error.Message);
        await Assert.ThrowsAsync<StoreConnectionLostException>(() => store.SetAsync("after", Bytes("stop")));
    }

    [Fact]
    public async Task ConnectingWhereNothingListensFailsWithTheAddress()
    {
        var port = FreeTcpPort.Next();

        var error = await Assert.ThrowsAsync<IOException>(() => StoreClient.ConnectAsync("127.0.0.1", port, new StoreClientOptions()));

        Assert.Contains($"127.0.0.1:{port}", error.Message);
    }

    [Fact]
    public void APortInUseNamesThePortAndTheFix()
    {
        var error = Assert.Throws<StoreException>(() => StoreServer.Start(IPAddress.Loopback, _server.Port, new StoreServerOptions(), NullLogger.Instance));

        Assert.Contains($"{_server.Port}", error.Message);
        Assert.Contains("already in use", error.Message);
        Assert.Contains("pick a free MASTER_PORT", error.Message);
        Assert.IsType<SocketException>(error.InnerException);
    }
}
