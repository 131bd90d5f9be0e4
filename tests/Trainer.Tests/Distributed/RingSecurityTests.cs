using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Trainer.Distributed;
using Trainer.Distributed.Cpu;
using Trainer.Distributed.Store;
using static TorchSharp.torch;

namespace Trainer.Tests.Distributed;

/// <summary>
/// The CPU ring admits only peers that know the run's secret (an HMAC over a fresh nonce and the hello, as the
/// store does): a stranger that knows the protocol is refused, one that says nothing is dropped, and the run's real
/// ranks still form their ring.
/// </summary>
public sealed class RingSecurityTests
{
    private const string Secret = "ring secret";
    private static readonly ProcessGroupOptions Options = new() { Backend = Backend.Cpu, Timeout = TimeSpan.FromSeconds(30), KeyPrefix = "ring", Secret = Secret };

    [Fact]
    public async Task A_stranger_with_a_perfect_hello_but_no_secret_is_refused_and_the_ring_still_forms()
    {
        var store = new InMemoryStore();
        // Rank 1 reaches rank 0 only once the stranger is done, so rank 0 is already accepting when the stranger calls.
        var strangerDone = new TaskCompletionSource();
        var rank0 = Task.Run(() => ProcessGroup.CreateAsync(Options, store, 0, 2, IPAddress.Loopback));
        var rank1 = Task.Run(() => ProcessGroup.CreateAsync(Options, new GatedStore(store, $"{Options.StorePrefix}/cpu/rank0", strangerDone.Task), 1, 2, IPAddress.Loopback));
        var group = new PrefixStore(Options.StorePrefix, store);
        await group.WaitAsync(["cpu/rank1"], TimeSpan.FromSeconds(30));
        var endpoint = IPEndPoint.Parse(Encoding.UTF8.GetString(await group.GetAsync("cpu/rank0", TimeSpan.FromSeconds(30))));

        // Rank 1's own hello, answered with a proof made without the secret (and, second, with a wrong one).
        foreach (var guess in new string?[] { null, "guessed" })
        {
            using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await stranger.ConnectAsync(endpoint);
            var hello = RingRendezvous.Hello(Options, 1, 2, RingRendezvous.Channel.Data);
            await stranger.SendAsync(hello);
            var nonce = await ReceiveAsync(stranger, 16);
            await stranger.SendAsync(RingRendezvous.Proof(guess, nonce, hello));
            var reply = await ReceiveAsync(stranger, 8);
            Assert.Equal(5, BinaryPrimitives.ReadInt32LittleEndian(reply)); // WrongSecret
        }
        strangerDone.SetResult();

        using var group0 = await rank0.WaitAsync(TimeSpan.FromSeconds(60));
        using var group1 = await rank1.WaitAsync(TimeSpan.FromSeconds(60));
        using var a = tensor(new float[] { 1, 2 });
        using var b = tensor(new float[] { 10, 20 });
        await Task.WhenAll(Task.Run(() => group0.AllReduce(a)), Task.Run(() => group1.AllReduce(b))).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal([11f, 22f], a.data<float>().ToArray());
        Assert.Equal([11f, 22f], b.data<float>().ToArray());
    }

    [Fact]
    public async Task A_silent_connection_is_dropped_after_the_handshake_timeout_instead_of_holding_the_ring()
    {
        var store = new InMemoryStore();
        var rank0 = Task.Run(() => ProcessGroup.CreateAsync(Options, store, 0, 2, IPAddress.Loopback));
        var endpoint = IPEndPoint.Parse(Encoding.UTF8.GetString(await new PrefixStore(Options.StorePrefix, store).GetAsync("cpu/rank0", TimeSpan.FromSeconds(30))));
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(endpoint);

        var rank1 = Task.Run(() => ProcessGroup.CreateAsync(Options, store, 1, 2, IPAddress.Loopback));
        using var group0 = await rank0.WaitAsync(TimeSpan.FromSeconds(60));
        using var group1 = await rank1.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, await silent.ReceiveAsync(new byte[1])); // closed by rank 0, unanswered
    }

    [Fact]
    public async Task Ranks_with_different_secrets_fail_fast_naming_the_secret()
    {
        var store = new InMemoryStore();
        var joining = new[]
        {
            Task.Run(() => ProcessGroup.CreateAsync(Options, store, 0, 2, IPAddress.Loopback)),
            Task.Run(() => ProcessGroup.CreateAsync(Options with { Secret = "another secret" }, store, 1, 2, IPAddress.Loopback)),
        };
        var error = await Assert.ThrowsAsync<DistributedException>(() => Task.WhenAny(joining).Unwrap().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("the run secret differs (TRAINER_RUN_SECRET). Give every rank the same TRAINER_RUN_SECRET", error.Message);
        foreach (var join in joining)
            await Assert.ThrowsAnyAsync<Exception>(() => join.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    private static async Task<byte[]> ReceiveAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received)).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            if (n == 0) throw new IOException("closed");
            received += n;
        }
        return buffer;
    }

    /// <summary>A store whose read of one key waits for a gate.</summary>
    private sealed class GatedStore(IStore inner, string gatedKey, Task gate) : IStore
    {
        public Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) => inner.SetAsync(key, value, cancellationToken);

        public async Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        {
            if (key == gatedKey) await gate.WaitAsync(cancellationToken);
            return await inner.GetAsync(key, timeout, cancellationToken);
        }

        public Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default) => inner.AddAsync(key, delta, cancellationToken);

        public Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default) =>
            inner.CompareSetAsync(key, expected, desired, cancellationToken);

        public Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default) => inner.WaitAsync(keys, timeout, cancellationToken);

        public Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default) => inner.CheckAsync(key, cancellationToken);

        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
