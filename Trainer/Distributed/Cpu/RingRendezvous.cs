using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Trainer.Distributed.Store;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// Builds the ring: every rank listens on advertiseAddress:0, publishes the endpoint in the store, connects to its
/// right neighbour and accepts its left neighbour. A hello/reply handshake rejects connections from another world
/// size, rank, key prefix or generation (a stale process of an earlier restart), so they never join the ring. With
/// the run's secret the accepting rank also sends a fresh nonce and admits only a peer whose answer is the HMAC-SHA256
/// of it and the hello under the secret: a stranger on the network can neither join nor replay a recorded handshake.
/// A connection that does not finish its handshake within <see cref="HandshakeTimeout"/> is dropped, not waited for.
/// Only synchronous socket calls are used so the sockets never join .NET's epoll loop (which would wake a thread
/// for every segment the ring receives later).
/// </summary>
internal static class RingRendezvous
{
    private const uint HelloMagic = 0x47_4E_49_52; // "RING"
    private const int ProtocolVersion = 2;
    private const int HelloBytes = 32;
    private const int NonceBytes = 16;
    private const int ProofBytes = 32;
    private const int ReplyBytes = 8;
    private static readonly byte[] ProofContext = Encoding.ASCII.GetBytes("dotnet-ddp ring hello v2");
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(100);

    private enum Reply
    {
        Accepted = 0,
        WrongProtocol = 1,
        WrongWorldSize = 2,
        WrongRank = 3,
        WrongGroup = 4,
        WrongSecret = 5,
    }

    public static async Task<RingTransport> ConnectAsync(
        ProcessGroupOptions options, IStore store, int rank, int worldSize, IPAddress advertiseAddress, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
        var leftRank = (rank + worldSize - 1) % worldSize;
        var rightRank = (rank + 1) % worldSize;
        using var listener = new Socket(advertiseAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(advertiseAddress, 0));
        listener.Listen(worldSize + 4);
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        await store.SetAsync($"cpu/rank{rank}", Encoding.UTF8.GetBytes(endpoint.ToString()), cancellationToken);

        byte[] published;
        try
        {
            published = await store.GetAsync($"cpu/rank{rightRank}", Remaining(deadline), cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new CollectiveTimeoutException(
                $"Rank {rightRank} did not publish its ring endpoint within {options.Timeout} (rank {rank} waited for key '{options.StorePrefix}/cpu/rank{rightRank}'); is it running with the same world size {worldSize} and key prefix?",
                rightRank);
        }
        var rightEndpoint = IPEndPoint.Parse(Encoding.UTF8.GetString(published));

        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var connect = OnOwnThread(() =>
        {
            var data = ConnectRight(rightEndpoint, rightRank, rank, Hello(options, rank, worldSize, Channel.Data), options.Secret, deadline, options.Timeout, abandon.Token);
            try
            {
                return new RingConnections(data, ConnectRight(rightEndpoint, rightRank, rank, Hello(options, rank, worldSize, Channel.Control), options.Secret, deadline, options.Timeout, abandon.Token));
            }
            catch
            {
                data.Dispose();
                throw;
            }
        });
        var accept = OnOwnThread(() => AcceptLeft(listener, leftRank, rank, Hello(options, rank, worldSize, Channel.Data), options.Secret, deadline, options.Timeout, abandon.Token));
        try
        {
            // Whichever fails first ends the other instead of letting it wait for the deadline.
            var first = await Task.WhenAny(connect, accept);
            if (first.IsFaulted || first.IsCanceled)
                await abandon.CancelAsync();
            await Task.WhenAll(connect, accept);
        }
        catch
        {
            foreach (var done in (Task<RingConnections>[])[connect, accept])
                if (done.IsCompletedSuccessfully)
                {
                    done.Result.Data.Dispose();
                    done.Result.Control.Dispose();
                }
            throw;
        }
        return new RingTransport(rank, worldSize, left: accept.Result, right: connect.Result);
    }

    internal enum Channel
    {
        Data = 0,
        Control = 1,
    }

    internal static byte[] Hello(ProcessGroupOptions options, int rank, int worldSize, Channel channel)
    {
        var hello = new byte[HelloBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(hello, HelloMagic);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(4), ProtocolVersion);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(8), worldSize);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(12), rank);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(16), options.Generation);
        BinaryPrimitives.WriteInt32LittleEndian(hello.AsSpan(20), (int)channel);
        BinaryPrimitives.WriteUInt64LittleEndian(hello.AsSpan(24), Fnv1a(options.KeyPrefix));
        return hello;
    }

    private static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text))
            hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }

    /// <summary>HMAC-SHA256 under the secret of the acceptor's nonce and the hello; all zeros for an open ring.</summary>
    internal static byte[] Proof(string? secret, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> hello)
    {
        if (secret is null)
            return new byte[ProofBytes];
        var data = new byte[ProofContext.Length + nonce.Length + hello.Length];
        ProofContext.CopyTo(data, 0);
        nonce.CopyTo(data.AsSpan(ProofContext.Length));
        hello.CopyTo(data.AsSpan(ProofContext.Length + nonce.Length));
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data);
    }

    private static Socket ConnectRight(IPEndPoint endpoint, int rightRank, int rank, byte[] hello, string? secret, long deadline, TimeSpan timeout, CancellationToken cancellationToken)
    {
        while (true)
        {
            var socket = NewSocket(endpoint.AddressFamily);
            try
            {
                socket.Blocking = false;
                try
                {
                    socket.Connect(endpoint);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
                {
                }
                while (!socket.Poll(Slice, SelectMode.SelectWrite))
                    CheckDeadline(deadline, cancellationToken, () => $"Rank {rank} could not connect to rank {rightRank} at {endpoint} within {timeout}.", rightRank);
                var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                if (error != SocketError.Success)
                    throw new SocketException((int)error);
                socket.Blocking = true;

                SendAll(socket, hello, deadline, cancellationToken, rightRank, rank, timeout);
                var nonce = new byte[NonceBytes];
                ReceiveAll(socket, nonce, deadline, cancellationToken, rightRank, rank, timeout);
                SendAll(socket, Proof(secret, nonce, hello), deadline, cancellationToken, rightRank, rank, timeout);
                var reply = new byte[ReplyBytes];
                ReceiveAll(socket, reply, deadline, cancellationToken, rightRank, rank, timeout);
                var status = (Reply)BinaryPrimitives.ReadInt32LittleEndian(reply);
                var expected = BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4));
                if (status != Reply.Accepted)
                    throw new DistributedException(status switch
                    {
                        Reply.WrongWorldSize => $"Rank {rightRank} at {endpoint} refused rank {rank}: it runs with world size {expected}, this rank with {BinaryPrimitives.ReadInt32LittleEndian(hello.AsSpan(8))}. Start every rank with the same WORLD_SIZE.",
                        Reply.WrongRank => $"Rank {rightRank} at {endpoint} refused rank {rank}: it expected rank {expected} as its left neighbour. Two processes may share RANK {rank}.",
                        Reply.WrongSecret => $"Rank {rightRank} at {endpoint} refused rank {rank}: the run secret differs (TRAINER_RUN_SECRET). Give every rank the same TRAINER_RUN_SECRET, or none to all.",
                        Reply.WrongGroup => $"Rank {rightRank} at {endpoint} refused rank {rank}: it belongs to another group or restart generation ({expected}). Stale processes of an earlier run must be stopped.",
                        _ => $"Rank {rightRank} at {endpoint} refused rank {rank}: incompatible collective protocol.",
                    }, rightRank);
                return socket;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset && Stopwatch.GetTimestamp() < deadline)
            {
                socket.Dispose();
                Thread.Sleep(50);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    private static RingConnections AcceptLeft(Socket listener, int leftRank, int rank, byte[] hello, string? secret, long deadline, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Socket? data = null;
        Socket? control = null;
        try
        {
            while (data is null || control is null)
            {
                while (!listener.Poll(Slice, SelectMode.SelectRead))
                    CheckDeadline(deadline, cancellationToken, () => $"Rank {leftRank} did not connect to rank {rank} within {timeout}; is it running with the same world size and key prefix?", leftRank);
                var socket = listener.Accept();
                try
                {
                    ConfigureData(socket);
                    var handshakeDeadline = Math.Min(deadline, Stopwatch.GetTimestamp() + (long)(HandshakeTimeout.TotalSeconds * Stopwatch.Frequency));
                    var theirs = new byte[HelloBytes];
                    ReceiveAll(socket, theirs, handshakeDeadline, cancellationToken, leftRank, rank, timeout);
                    var nonce = RandomNumberGenerator.GetBytes(NonceBytes);
                    SendAll(socket, nonce, handshakeDeadline, cancellationToken, leftRank, rank, timeout);
                    var proof = new byte[ProofBytes];
                    ReceiveAll(socket, proof, handshakeDeadline, cancellationToken, leftRank, rank, timeout);
                    var (status, expected) = CryptographicOperations.FixedTimeEquals(proof, Proof(secret, nonce, theirs))
                        ? Check(theirs, hello, leftRank)
                        : (Reply.WrongSecret, 0);
                    var channel = (Channel)BinaryPrimitives.ReadInt32LittleEndian(theirs.AsSpan(20));
                    if (status == Reply.Accepted && (channel == Channel.Data ? data : channel == Channel.Control ? control : socket) is not null)
                        (status, expected) = (Reply.WrongProtocol, ProtocolVersion); // a duplicate or unknown channel
                    var reply = new byte[ReplyBytes];
                    BinaryPrimitives.WriteInt32LittleEndian(reply, (int)status);
                    BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(4), expected);
                    SendAll(socket, reply, deadline, cancellationToken, leftRank, rank, timeout);
                    if (status != Reply.Accepted)
                        socket.Dispose();
                    else if (channel == Channel.Data)
                        data = socket;
                    else
                        control = socket;
                }
                catch (Exception e) when (e is SocketException || (e is CollectiveTimeoutException && Stopwatch.GetTimestamp() < deadline))
                {
                    // A connection that broke or stalled during its handshake is not our neighbour; keep waiting for the real one.
                    socket.Dispose();
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }
            return new RingConnections(data, control);
        }
        catch
        {
            data?.Dispose();
            control?.Dispose();
            throw;
        }
    }

    private static (Reply Status, int Expected) Check(byte[] theirs, byte[] ours, int leftRank)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(theirs) != HelloMagic || BinaryPrimitives.ReadInt32LittleEndian(theirs.AsSpan(4)) != ProtocolVersion)
            return (Reply.WrongProtocol, ProtocolVersion);
        var worldSize = BinaryPrimitives.ReadInt32LittleEndian(ours.AsSpan(8));
        if (BinaryPrimitives.ReadInt32LittleEndian(theirs.AsSpan(8)) != worldSize)
            return (Reply.WrongWorldSize, worldSize);
        if (!theirs.AsSpan(16, 4).SequenceEqual(ours.AsSpan(16, 4)) || !theirs.AsSpan(24, 8).SequenceEqual(ours.AsSpan(24, 8)))
            return (Reply.WrongGroup, BinaryPrimitives.ReadInt32LittleEndian(ours.AsSpan(16)));
        if (BinaryPrimitives.ReadInt32LittleEndian(theirs.AsSpan(12)) != leftRank)
            return (Reply.WrongRank, leftRank);
        return (Reply.Accepted, 0);
    }

    private static Socket NewSocket(AddressFamily family)
    {
        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        ConfigureData(socket);
        return socket;
    }

    // No SO_SNDBUF/SO_RCVBUF: setting them caps the buffers at net.core.[rw]mem_max and turns off Linux's
    // autotuning, which grows them further (to tcp_[rw]mem's maximum); on loopback that measured slower.
    private static void ConfigureData(Socket socket) => socket.NoDelay = true;

    private static void SendAll(Socket socket, byte[] buffer, long deadline, CancellationToken cancellationToken, int peer, int rank, TimeSpan timeout)
    {
        var sent = 0;
        while (sent < buffer.Length)
        {
            while (!socket.Poll(Slice, SelectMode.SelectWrite))
                CheckDeadline(deadline, cancellationToken, () => $"Handshake between rank {rank} and rank {peer} did not finish within {timeout}.", peer);
            sent += socket.Send(buffer, sent, buffer.Length - sent, SocketFlags.None);
        }
    }

    private static void ReceiveAll(Socket socket, byte[] buffer, long deadline, CancellationToken cancellationToken, int peer, int rank, TimeSpan timeout)
    {
        var received = 0;
        while (received < buffer.Length)
        {
            while (!socket.Poll(Slice, SelectMode.SelectRead))
                CheckDeadline(deadline, cancellationToken, () => $"Handshake between rank {rank} and rank {peer} did not finish within {timeout}.", peer);
            var n = socket.Receive(buffer, received, buffer.Length - received, SocketFlags.None);
            if (n == 0)
                throw new SocketException((int)SocketError.ConnectionReset);
            received += n;
        }
    }

    private static void CheckDeadline(long deadline, CancellationToken cancellationToken, Func<string> message, int peer)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Stopwatch.GetTimestamp() >= deadline)
            throw new CollectiveTimeoutException(message(), peer);
    }

    /// <summary>
    /// Connecting and accepting block until the deadline: on a thread of their own they start at once, where the
    /// thread pool of a busy process may add a thread only after the deadline has passed.
    /// </summary>
    private static Task<T> OnOwnThread<T>(Func<T> blocking) =>
        Task.Factory.StartNew(blocking, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static TimeSpan Remaining(long deadline) =>
        TimeSpan.FromSeconds(Math.Max(0, deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
}
