using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Trainer.Distributed.Store;

public sealed record StoreServerOptions
{
    /// <summary>When set, every connection must prove it knows this secret before its first request.</summary>
    public string? Secret { get; init; }

    /// <summary>A connection that has not completed the hello by then is dropped.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Once a frame has started, the rest of it must arrive within this time; a response must be taken within it too.</summary>
    public TimeSpan FrameTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Waiting gets and waits one connection may have outstanding.</summary>
    public int MaxPendingWaitsPerConnection { get; init; } = 1024;
}

/// <summary>
/// Serves the rendezvous store over TCP (see StoreProtocol.cs for the wire format). One async task per
/// connection; waiting requests park on the table and cost no thread. A connection that breaks the protocol,
/// fails the handshake or stays silent is dropped with a log line; the server and its other clients carry on.
/// </summary>
public sealed class StoreServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly StoreServerOptions _options;
    private readonly ILogger _logger;
    private readonly DropLog _drops;
    private readonly StoreTable _table = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<TcpClient, Task> _connections = new();
    private readonly Task _acceptLoop;

    private StoreServer(TcpListener listener, StoreServerOptions options, ILogger logger)
    {
        _listener = listener;
        _options = options;
        _logger = logger;
        _drops = new DropLog(logger);
        EndPoint = (IPEndPoint)listener.LocalEndpoint;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The address and port the server listens on (the real port when 0 was asked for).</summary>
    public IPEndPoint EndPoint { get; }

    public int Port => EndPoint.Port;

    /// <summary>Starts listening on <paramref name="address"/>:<paramref name="port"/> (port 0 picks a free one).</summary>
    /// <exception cref="StoreException">The port is taken.</exception>
    public static StoreServer Start(IPAddress address, int port, StoreServerOptions options, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        var listener = new TcpListener(address, port);
        if (address.Equals(IPAddress.IPv6Any))
            listener.Server.DualMode = true;
        try
        {
            listener.Start(backlog: 512);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            listener.Dispose();
            throw new StoreException(
                $"cannot serve the store on {address}:{port}: the port is already in use; pick a free MASTER_PORT or stop the process holding port {port} (a previous run? see `ss -ltnp 'sport = :{port}'`).", ex);
        }
        var server = new StoreServer(listener, options, logger);
        logger.LogInformation("store: serving on {EndPoint} ({Access})", server.EndPoint, options.Secret is null ? "open" : "secret required");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
            return;
        await _stopping.CancelAsync();
        _listener.Stop();
        foreach (var tcp in _connections.Keys)
            tcp.Dispose();
        await _acceptLoop;
        await Task.WhenAll(_connections.Values);
        _logger.LogDebug("store: stopped on {EndPoint}", EndPoint);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient tcp;
            try
            {
                tcp = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: keep serving the connections we have and try again.
                _logger.LogWarning("store: accept failed on {EndPoint}: {Reason}", EndPoint, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None);
                continue;
            }

            var started = new TaskCompletionSource();
            var connection = ServeAsync(tcp, started.Task);
            _connections[tcp] = connection;
            started.SetResult();
        }
    }

    private async Task ServeAsync(TcpClient tcp, Task registered)
    {
        await registered;
        await Task.Yield();
        EndPoint? remote = null;
        var handshakeDone = false;
        using var closing = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        try
        {
            // Inside the try: a server stopping right now has disposed the connection already (tcp.Client is null).
            remote = tcp.Client.RemoteEndPoint;
            tcp.NoDelay = true;
            StoreProtocol.EnableKeepAlive(tcp.Client);
            var connection = new Connection(tcp.GetStream(), remote, _options.FrameTimeout);
            await HandshakeAsync(connection, closing.Token);
            handshakeDone = true;
            _logger.LogDebug("store: {Remote} connected", remote);

            while (await StoreProtocol.ReadFrameAsync(connection.Stream, StoreProtocol.MaxFrameBytes, _options.FrameTimeout, closing.Token) is { } frame)
                await DispatchAsync(connection, frame, closing.Token);
            _logger.LogDebug("store: {Remote} disconnected", remote);
        }
        catch (Exception) when (_stopping.IsCancellationRequested)
        {
        }
        catch (OperationCanceledException) when (!handshakeDone)
        {
            _drops.Dropped(remote, $"no hello within {_options.HandshakeTimeout.TotalSeconds:0.###} s");
        }
        catch (StoreProtocolException ex)
        {
            _drops.Dropped(remote, ex.Message);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            _logger.LogDebug("store: connection from {Remote} lost: {Reason}", remote, ex.Message);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "store: dropped connection from {Remote} after an unexpected error", remote);
        }
        finally
        {
            await closing.CancelAsync();
            tcp.Dispose();
            _connections.TryRemove(tcp, out _);
        }
    }

    private async Task HandshakeAsync(Connection connection, CancellationToken closing)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(closing);
        deadline.CancelAfter(_options.HandshakeTimeout);
        var nonce = RandomNumberGenerator.GetBytes(StoreProtocol.NonceBytes);
        await connection.SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Challenge, 0)
            .Byte(_options.Secret is null ? (byte)0 : (byte)1).Raw(nonce).ToArray(), deadline.Token);

        var hello = await StoreProtocol.ReadFrameAsync(connection.Stream, StoreProtocol.MaxHandshakeFrameBytes, _options.HandshakeTimeout, deadline.Token)
            ?? throw new StoreProtocolException("closed before the hello");
        if (hello.Op != StoreOp.Hello)
            throw new StoreProtocolException($"first frame is {hello.Op}, not Hello");
        var reader = new StoreProtocol.PayloadReader(hello.Payload);
        var proof = reader.Take(reader.Byte()).ToArray();
        reader.End();

        if (_options.Secret is not null
            && !CryptographicOperations.FixedTimeEquals(proof, StoreProtocol.Proof(_options.Secret, nonce)))
        {
            await connection.SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Error, 0)
                .Key("authentication failed: the rank's TRAINER_RUN_SECRET differs from rank 0's").ToArray(), deadline.Token);
            throw new StoreProtocolException(proof.Length == 0 ? "hello carried no secret proof" : "wrong secret proof");
        }
        await connection.SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Ok, 0).ToArray(), deadline.Token);
    }

    private async Task DispatchAsync(Connection connection, StoreFrame frame, CancellationToken closing)
    {
        var reader = new StoreProtocol.PayloadReader(frame.Payload);
        var reply = new StoreProtocol.FrameBuilder(StoreOp.Ok, frame.Id);
        try
        {
            switch (frame.Op)
            {
                case StoreOp.Set:
                {
                    var key = reader.Key();
                    var value = reader.Bytes();
                    reader.End();
                    _table.Set(key, value);
                    break;
                }
                case StoreOp.Add:
                {
                    var key = reader.Key();
                    var delta = reader.Int64();
                    reader.End();
                    reply = new StoreProtocol.FrameBuilder(StoreOp.Integer, frame.Id).Int64(_table.Add(key, delta));
                    break;
                }
                case StoreOp.CompareSet:
                {
                    var key = reader.Key();
                    var expected = reader.Bytes();
                    var desired = reader.Bytes();
                    reader.End();
                    reply = new StoreProtocol.FrameBuilder(StoreOp.Value, frame.Id).Bytes(_table.CompareSet(key, expected, desired));
                    break;
                }
                case StoreOp.Check:
                {
                    var key = reader.Key();
                    reader.End();
                    reply = new StoreProtocol.FrameBuilder(StoreOp.Flag, frame.Id).Byte(_table.Check(key) ? (byte)1 : (byte)0);
                    break;
                }
                case StoreOp.Delete:
                {
                    var key = reader.Key();
                    reader.End();
                    reply = new StoreProtocol.FrameBuilder(StoreOp.Flag, frame.Id).Byte(_table.Delete(key) ? (byte)1 : (byte)0);
                    break;
                }
                case StoreOp.Get:
                {
                    var key = reader.Key();
                    var timeout = reader.Timeout();
                    reader.End();
                    StartWait(connection, frame.Id, [key], timeout, returnValue: true, closing);
                    return;
                }
                case StoreOp.Wait:
                {
                    var count = reader.UInt16();
                    if (count > StoreProtocol.MaxKeysPerWait)
                        throw new StoreProtocolException($"wait for {count} keys exceeds {StoreProtocol.MaxKeysPerWait}");
                    var keys = new string[count];
                    for (var i = 0; i < count; i++)
                        keys[i] = reader.Key();
                    var timeout = reader.Timeout();
                    reader.End();
                    StartWait(connection, frame.Id, keys, timeout, returnValue: false, closing);
                    return;
                }
                default:
                    throw new StoreProtocolException($"{frame.Op} is not a request");
            }
        }
        catch (StoreException ex)
        {
            reply = ErrorReply(frame.Id, ex.Message);
        }
        await connection.SendAsync(reply.ToArray(), closing);
    }

    private void StartWait(Connection connection, uint id, string[] keys, TimeSpan timeout, bool returnValue, CancellationToken closing)
    {
        _ = AnswerWhenReadyAsync();

        async Task AnswerWhenReadyAsync()
        {
            Interlocked.Increment(ref connection.PendingWaits);
            try
            {
                StoreProtocol.FrameBuilder reply;
                if (Volatile.Read(ref connection.PendingWaits) > _options.MaxPendingWaitsPerConnection)
                    reply = ErrorReply(id, $"more than {_options.MaxPendingWaitsPerConnection} waits outstanding on one connection");
                else
                {
                    var (value, missing) = await _table.WaitAsync(keys, timeout, closing);
                    if (value is null)
                    {
                        reply = new StoreProtocol.FrameBuilder(StoreOp.TimedOut, id).UInt16((ushort)missing.Length);
                        foreach (var key in missing)
                            reply.Key(key);
                    }
                    else
                        reply = returnValue ? new StoreProtocol.FrameBuilder(StoreOp.Value, id).Bytes(value) : new StoreProtocol.FrameBuilder(StoreOp.Ok, id);
                }
                if (!closing.IsCancellationRequested)
                    await connection.SendAsync(reply.ToArray(), closing);
            }
            catch (StoreProtocolException ex)
            {
                _drops.Dropped(connection.Remote, ex.Message);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
                // The connection is going away; its read loop reports why.
            }
            finally
            {
                Interlocked.Decrement(ref connection.PendingWaits);
            }
        }
    }

    private static StoreProtocol.FrameBuilder ErrorReply(uint id, string message) =>
        new StoreProtocol.FrameBuilder(StoreOp.Error, id).Key(message.Length > 1000 ? message[..1000] : message);

    private sealed class Connection(NetworkStream stream, EndPoint? remote, TimeSpan writeTimeout)
    {
        private readonly SemaphoreSlim _writeLock = new(1, 1);
        public int PendingWaits;

        public NetworkStream Stream { get; } = stream;

        public EndPoint? Remote { get; } = remote;

        /// <summary>A peer that does not take its responses within the write timeout breaks the protocol.</summary>
        public async Task SendAsync(byte[] frame, CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(writeTimeout);
            try
            {
                await _writeLock.WaitAsync(deadline.Token);
                try
                {
                    await Stream.WriteAsync(frame, deadline.Token);
                }
                finally
                {
                    _writeLock.Release();
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Stream.Dispose();
                throw new StoreProtocolException($"peer did not read a {frame.Length}-byte response within {writeTimeout.TotalSeconds:0.###} s");
            }
        }
    }
}
