using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Trainer.Distributed.Store;

public sealed record StoreClientOptions
{
    /// <summary>The run's secret; must match the server's (both null = open store).</summary>
    public string? Secret { get; init; }

    /// <summary>Used by gets and waits called without a timeout, and as the limit for the store to answer anything.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>Limit for the TCP connect plus the handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// One connection to a <see cref="StoreServer"/>. Thread-safe: any number of requests may be in flight; a reader
/// loop hands each response to its caller by request id. When the connection breaks, every pending and later
/// call fails with an <see cref="IOException"/> naming the store.
/// </summary>
public sealed class StoreClient : IStore
{
    /// <summary>How long past its own timeout a get or wait may take to come back before the store counts as stuck.</summary>
    private static readonly TimeSpan AnswerSlack = TimeSpan.FromSeconds(5);

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly StoreClientOptions _options;
    private readonly string _store;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<StoreFrame>> _pending = new();
    private readonly Task _readLoop;
    private Exception? _fault;
    private int _nextId;
    private int _disposed;

    private StoreClient(TcpClient tcp, StoreClientOptions options, string store)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _options = options;
        _store = store;
        LocalEndPoint = (IPEndPoint)tcp.Client.LocalEndPoint!;
        RemoteEndPoint = (IPEndPoint)tcp.Client.RemoteEndPoint!;
        _readLoop = ReadLoopAsync();
    }

    /// <summary>This side of the connection: the address the store's host reaches this process at.</summary>
    public IPEndPoint LocalEndPoint { get; }

    public IPEndPoint RemoteEndPoint { get; }

    public TimeSpan DefaultTimeout => _options.Timeout;

    /// <summary>Connects to the store at <paramref name="host"/>:<paramref name="port"/> and completes the handshake.</summary>
    /// <exception cref="IOException">Nothing accepts connections there (yet); worth retrying.</exception>
    /// <exception cref="TimeoutException">Connect plus handshake took longer than the connect timeout.</exception>
    /// <exception cref="StoreAuthenticationException">The secrets do not match; retrying cannot help.</exception>
    public static async Task<StoreClient> ConnectAsync(string host, int port, StoreClientOptions options, CancellationToken cancellationToken = default)
    {
        var store = $"{host}:{port}";
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.ConnectTimeout);
        TcpClient? tcp = null;
        try
        {
            var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(host, deadline.Token);
            SocketException? refused = null;
            foreach (var address in addresses)
            {
                tcp = new TcpClient(address.AddressFamily) { NoDelay = true };
                StoreProtocol.EnableKeepAlive(tcp.Client);
                try
                {
                    await tcp.ConnectAsync(address, port, deadline.Token);
                    break;
                }
                catch (SocketException ex)
                {
                    refused = ex;
                    tcp.Dispose();
                    tcp = null;
                }
            }
            if (tcp is null)
                throw new IOException($"cannot connect to the store at {store}: {refused?.Message ?? "the host name resolves to no address"}", refused);

            await HandshakeAsync(tcp.GetStream(), options, store, deadline.Token);
            var client = new StoreClient(tcp, options, store);
            tcp = null;
            return client;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the store at {store} did not accept a connection and handshake within {options.ConnectTimeout.TotalSeconds:0.###} s");
        }
        finally
        {
            tcp?.Dispose();
        }
    }

    public async Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) =>
        Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.Set, id).Key(key).Bytes(value.Span), _options.Timeout, $"set '{key}'", cancellationToken),
            StoreOp.Ok);

    public async Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = CheckTimeout(timeout ?? _options.Timeout);
        var reply = Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.Get, id).Key(key).Int64((long)wait.TotalMilliseconds), wait + AnswerSlack,
            $"get '{key}'", cancellationToken, wait), StoreOp.Value);
        var reader = new StoreProtocol.PayloadReader(reply.Payload);
        return reader.Bytes();
    }

    public async Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default)
    {
        var reply = Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.Add, id).Key(key).Int64(delta), _options.Timeout, $"add to '{key}'", cancellationToken),
            StoreOp.Integer);
        return new StoreProtocol.PayloadReader(reply.Payload).Int64();
    }

    public async Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default)
    {
        var reply = Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.CompareSet, id).Key(key).Bytes(expected.Span).Bytes(desired.Span),
            _options.Timeout, $"compare-set '{key}'", cancellationToken), StoreOp.Value);
        return new StoreProtocol.PayloadReader(reply.Payload).Bytes();
    }

    public async Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        if (keys.Count > StoreProtocol.MaxKeysPerWait)
            throw new ArgumentException($"waiting for {keys.Count} keys at once exceeds the limit of {StoreProtocol.MaxKeysPerWait}; wait in batches.", nameof(keys));
        var wait = CheckTimeout(timeout ?? _options.Timeout);
        Expect(await CallAsync(id =>
        {
            var frame = new StoreProtocol.FrameBuilder(StoreOp.Wait, id).UInt16((ushort)keys.Count);
            foreach (var key in keys)
                frame.Key(key);
            return frame.Int64((long)wait.TotalMilliseconds);
        }, wait + AnswerSlack, $"wait for {Describe(keys)}", cancellationToken, wait), StoreOp.Ok);
    }

    public async Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default)
    {
        var reply = Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.Check, id).Key(key), _options.Timeout, $"check '{key}'", cancellationToken),
            StoreOp.Flag);
        return new StoreProtocol.PayloadReader(reply.Payload).Byte() != 0;
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var reply = Expect(await CallAsync(id => new StoreProtocol.FrameBuilder(StoreOp.Delete, id).Key(key), _options.Timeout, $"delete '{key}'", cancellationToken),
            StoreOp.Flag);
        return new StoreProtocol.PayloadReader(reply.Payload).Byte() != 0;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Fault(new ObjectDisposedException(nameof(StoreClient), $"the client of the store at {_store} was disposed"));
        await _readLoop;
    }

    private static async Task HandshakeAsync(NetworkStream stream, StoreClientOptions options, string store, CancellationToken cancellationToken)
    {
        var challenge = await StoreProtocol.ReadFrameAsync(stream, StoreProtocol.MaxHandshakeFrameBytes, options.ConnectTimeout, cancellationToken)
            ?? throw new IOException($"the store at {store} closed the connection before the handshake");
        if (challenge.Op != StoreOp.Challenge)
            throw new StoreProtocolException($"the store at {store} opened with {challenge.Op}, not a challenge");
        var reader = new StoreProtocol.PayloadReader(challenge.Payload);
        var secretRequired = reader.Byte() != 0;
        var nonce = reader.Take(StoreProtocol.NonceBytes).ToArray();
        reader.End();

        if (secretRequired && options.Secret is null)
            throw new StoreAuthenticationException($"the store at {store} requires a secret but this rank has no TRAINER_RUN_SECRET; give every rank the run's TRAINER_RUN_SECRET.");
        if (!secretRequired && options.Secret is not null)
            throw new StoreAuthenticationException($"the store at {store} is open but this rank has TRAINER_RUN_SECRET set; give every rank, rank 0 too, the same TRAINER_RUN_SECRET.");

        var proof = options.Secret is null ? [] : StoreProtocol.Proof(options.Secret, nonce);
        await stream.WriteAsync(new StoreProtocol.FrameBuilder(StoreOp.Hello, 0).Byte((byte)proof.Length).Raw(proof).ToArray(), cancellationToken);

        var verdict = await StoreProtocol.ReadFrameAsync(stream, StoreProtocol.MaxFrameBytes, options.ConnectTimeout, cancellationToken)
            ?? throw new IOException($"the store at {store} closed the connection during the handshake");
        if (verdict.Op == StoreOp.Error)
            throw new StoreAuthenticationException($"the store at {store} refused this rank: {new StoreProtocol.PayloadReader(verdict.Payload).Key()}");
        if (verdict.Op != StoreOp.Ok)
            throw new StoreProtocolException($"the store at {store} answered the hello with {verdict.Op}");
    }

    /// <param name="waitTimeout">For gets and waits: the timeout the store applies, quoted when it expires.</param>
    private async Task<StoreFrame> CallAsync(Func<uint, StoreProtocol.FrameBuilder> build, TimeSpan answerWithin, string what, CancellationToken cancellationToken,
        TimeSpan? waitTimeout = null)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var id = (uint)Interlocked.Increment(ref _nextId);
        var frame = build(id).ToArray();
        var answer = new TaskCompletionSource<StoreFrame>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = answer;
        try
        {
            // A fault recorded before we were filed would never reach this answer; pass it on ourselves.
            if (Volatile.Read(ref _fault) is { } fault)
                throw Broken(fault);
            await SendAsync(frame, answerWithin);
            var reply = await answer.Task.WaitAsync(answerWithin, cancellationToken);
            if (reply.Op == StoreOp.TimedOut)
            {
                var reader = new StoreProtocol.PayloadReader(reply.Payload);
                var missing = new string[reader.UInt16()];
                for (var i = 0; i < missing.Length; i++)
                    missing[i] = reader.Key();
                throw new TimeoutException($"timed out after {(waitTimeout ?? answerWithin).TotalSeconds:0.###} s waiting for store {Describe(missing)} at {_store}");
            }
            if (reply.Op == StoreOp.Error)
                throw new StoreException($"the store at {_store} refused {what}: {new StoreProtocol.PayloadReader(reply.Payload).Key()}");
            return reply;
        }
        catch (TimeoutException) when (!answer.Task.IsCompleted)
        {
            throw new TimeoutException($"the store at {_store} did not answer {what} within {answerWithin.TotalSeconds:0.###} s");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private StoreFrame Expect(StoreFrame reply, StoreOp op)
    {
        if (reply.Op == op)
            return reply;
        var error = new StoreProtocolException($"the store at {_store} answered {reply.Op} where {op} was expected");
        Fault(error);
        throw error;
    }

    private async Task SendAsync(byte[] frame, TimeSpan within)
    {
        await _writeLock.WaitAsync(within);
        try
        {
            // Not cancellable: a half-written frame would corrupt the stream. A write that stalls breaks the connection.
            await _stream.WriteAsync(frame).AsTask().WaitAsync(within);
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or ObjectDisposedException)
        {
            Fault(ex);
            throw Broken(ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                var frame = await StoreProtocol.ReadFrameAsync(_stream, StoreProtocol.MaxFrameBytes, _options.Timeout, CancellationToken.None)
                    ?? throw new IOException("the store closed the connection");
                if (_pending.TryGetValue(frame.Id, out var answer))
                    answer.TrySetResult(frame);
            }
        }
        catch (Exception ex)
        {
            Fault(ex);
        }
    }

    /// <summary>Records the first failure, closes the socket and fails every pending call with it.</summary>
    private void Fault(Exception cause)
    {
        if (Interlocked.CompareExchange(ref _fault, cause, null) is null)
            _tcp.Dispose();
        var fault = Volatile.Read(ref _fault)!;
        foreach (var answer in _pending.Values)
            answer.TrySetException(Broken(fault));
    }

    private Exception Broken(Exception fault) => fault is ObjectDisposedException disposed
        ? disposed
        : new StoreConnectionLostException($"lost the connection to the store at {_store}: {fault.Message}", fault);

    private static TimeSpan CheckTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero || timeout.TotalMilliseconds > StoreProtocol.MaxTimeoutMilliseconds)
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout,
                $"a store timeout must be between 0 and {TimeSpan.FromMilliseconds(StoreProtocol.MaxTimeoutMilliseconds).TotalDays} days; infinite waits are not allowed.");
        return timeout;
    }

    private static string Describe(IReadOnlyList<string> keys) => keys.Count switch
    {
        1 => $"key '{keys[0]}'",
        <= 8 => $"keys {string.Join(", ", keys.Select(key => $"'{key}'"))}",
        _ => $"keys {string.Join(", ", keys.Take(8).Select(key => $"'{key}'"))} and {keys.Count - 8} more",
    };
}
