using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using static Trainer.Interop;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// One rank's connections in the ring: a data connection from the left neighbour and one to the right neighbour
/// (data flows one way only), plus a control connection to each neighbour that carries nothing but failure notices.
/// A rank that fails sends a notice both ways and every rank passes it on, so each survivor learns which rank the
/// failure is attributed to, not only that its neighbour gave up. A control connection that closes without a
/// notice means the neighbour's process is gone. Data-path calls are non-blocking and allocation-free.
/// </summary>
internal sealed unsafe class RingTransport : IDisposable
{
    public const int WouldBlock = -Libc.EAgain;
    private const uint NoticeMagic = 0x4E_54_43_45; // "NTCE"
    private const int NoticeHeaderBytes = 16;
    private const int MaxNoticeMessageBytes = 2048;

    private readonly Socket[] sockets;
    private readonly int dataLeft;
    private readonly int dataRight;
    private readonly int controlLeft;
    private readonly int controlRight;
    private readonly Lock noticeLock = new();
    private bool noticeSent;
    private int shutDown;

    public RingTransport(int rank, int worldSize, RingConnections left, RingConnections right)
    {
        Rank = rank;
        WorldSize = worldSize;
        sockets = [left.Data, left.Control, right.Data, right.Control];
        dataLeft = (int)left.Data.Handle;
        controlLeft = (int)left.Control.Handle;
        dataRight = (int)right.Data.Handle;
        controlRight = (int)right.Control.Handle;
    }

    public int Rank { get; }
    public int WorldSize { get; }
    public int LeftRank => (Rank + WorldSize - 1) % WorldSize;
    public int RightRank => (Rank + 1) % WorldSize;

    /// <summary>Sends from up to two buffers to the right neighbour; returns the bytes sent, or a negative errno (<see cref="WouldBlock"/>).</summary>
    public long Send(byte* first, long firstLength, byte* second, long secondLength)
    {
        var vectors = stackalloc Libc.IoVec[2];
        var message = Vectors(vectors, first, firstLength, second, secondLength);
        var sent = Libc.SendMessage(dataRight, &message, Libc.MsgDontWait | Libc.MsgNoSignal);
        return sent >= 0 ? sent : -Marshal.GetLastPInvokeError();
    }

    /// <summary>Receives from the left neighbour into up to two buffers; returns the bytes received, 0 at end of stream, or a negative errno.</summary>
    public long Receive(byte* first, long firstLength, byte* second, long secondLength)
    {
        var vectors = stackalloc Libc.IoVec[2];
        var message = Vectors(vectors, first, firstLength, second, secondLength);
        var received = Libc.ReceiveMessage(dataLeft, &message, Libc.MsgDontWait);
        return received >= 0 ? received : -Marshal.GetLastPInvokeError();
    }

    private static Libc.MessageHeader Vectors(Libc.IoVec* vectors, byte* first, long firstLength, byte* second, long secondLength)
    {
        vectors[0] = new Libc.IoVec { Base = first, Length = (nuint)firstLength };
        vectors[1] = new Libc.IoVec { Base = second, Length = (nuint)secondLength };
        return new Libc.MessageHeader { Vectors = vectors, VectorCount = secondLength > 0 ? 2u : 1u };
    }

    /// <summary>
    /// Sleeps until the data stream can move (left readable if <paramref name="wantInput"/>, right writable if
    /// <paramref name="wantOutput"/>) or a watched control connection has something (a notice, or it closed).
    /// Returns the control sides that need attention.
    /// </summary>
    public Side Wait(bool wantInput, bool wantOutput, Side watch, int timeoutMilliseconds)
    {
        var fds = stackalloc Libc.PollFd[4];
        fds[0] = new Libc.PollFd { Fd = wantInput ? dataLeft : -1, Events = Libc.PollIn };
        fds[1] = new Libc.PollFd { Fd = wantOutput ? dataRight : -1, Events = Libc.PollOut };
        fds[2] = new Libc.PollFd { Fd = (watch & Side.Left) != 0 ? controlLeft : -1, Events = Libc.PollIn };
        fds[3] = new Libc.PollFd { Fd = (watch & Side.Right) != 0 ? controlRight : -1, Events = Libc.PollIn };
        int ready;
        do
        {
            ready = Libc.Poll(fds, 4, timeoutMilliseconds);
        }
        while (ready < 0 && Marshal.GetLastPInvokeError() == Libc.EIntr);
        if (ready < 0)
            throw new DistributedException($"poll() on the ring sockets failed with errno {Marshal.GetLastPInvokeError()} on rank {Rank}.", Rank);
        var signalled = Side.None;
        if (fds[2].ReturnedEvents != 0)
            signalled |= Side.Left;
        if (fds[3].ReturnedEvents != 0)
            signalled |= Side.Right;
        return signalled;
    }

    /// <summary>Reads what a neighbour sent on its control connection, waiting up to <paramref name="timeoutMilliseconds"/>.</summary>
    public ControlSignal ReadControl(Side side, int timeoutMilliseconds, out Notice notice)
    {
        notice = default;
        var fd = side == Side.Left ? controlLeft : controlRight;
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * timeoutMilliseconds / 1000;
        var head = stackalloc byte[NoticeHeaderBytes];
        var got = ReadControl(fd, head, NoticeHeaderBytes, deadline);
        if (got == WouldBlock)
            return ControlSignal.None;
        if (got <= 0)
            return ControlSignal.Closed;
        if (got < NoticeHeaderBytes || BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(head, 4)) != NoticeMagic)
            return ControlSignal.Garbled;
        var failedRank = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(head + 4, 4));
        var reporter = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(head + 8, 4));
        var length = Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(head + 12, 4)), 0, MaxNoticeMessageBytes);
        var text = new byte[length];
        fixed (byte* p = text)
        {
            var read = length == 0 ? 0 : ReadControl(fd, p, length, deadline);
            notice = new Notice(failedRank < 0 ? null : failedRank, reporter, Encoding.UTF8.GetString(text, 0, (int)Math.Max(read, 0)));
        }
        return ControlSignal.Notice;
    }

    /// <summary>
    /// After the data stream from a neighbour broke: waits up to <paramref name="graceMilliseconds"/> for a notice
    /// explaining it. Returns early when that neighbour's control connection closes without one (its process is gone).
    /// </summary>
    public bool TryAwaitNotice(Side broken, int graceMilliseconds, out Notice notice)
    {
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * graceMilliseconds / 1000;
        var watch = Side.Left | Side.Right;
        while (watch != Side.None)
        {
            var remaining = (int)Math.Max(0, (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency);
            var signalled = Wait(false, false, watch, remaining);
            if (signalled == Side.None)
                break;
            foreach (var side in (ReadOnlySpan<Side>)[Side.Left, Side.Right])
            {
                if ((signalled & side) == 0)
                    continue;
                switch (ReadControl(side, 100, out notice))
                {
                    case ControlSignal.Notice:
                        return true;
                    case ControlSignal.Closed or ControlSignal.Garbled:
                        watch &= ~side;
                        if (side == broken)
                            return false;
                        break;
                }
            }
        }
        notice = default;
        return false;
    }

    // Failure path only: reads exactly length bytes unless the stream ends or the deadline passes.
    private static long ReadControl(int fd, byte* buffer, int length, long deadline)
    {
        var total = 0;
        while (total < length)
        {
            var vector = new Libc.IoVec { Base = buffer + total, Length = (nuint)(length - total) };
            var message = new Libc.MessageHeader { Vectors = &vector, VectorCount = 1 };
            var n = Libc.ReceiveMessage(fd, &message, Libc.MsgDontWait);
            if (n > 0)
            {
                total += (int)n;
                continue;
            }
            if (n == 0)
                return total;
            var error = Marshal.GetLastPInvokeError();
            if (error != Libc.EAgain)
                return total == 0 ? -error : total;
            var remaining = (int)Math.Max(0, (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency);
            if (remaining == 0)
                return total == 0 ? WouldBlock : total;
            var pollFd = new Libc.PollFd { Fd = fd, Events = Libc.PollIn };
            Libc.Poll(&pollFd, 1, remaining);
        }
        return total;
    }

    /// <summary>
    /// Tells both neighbours (once) that this rank failed and which rank the failure is attributed to, then ends the
    /// outgoing data stream so the right neighbour stops waiting for it. Sockets stay open until disposal, so a notice
    /// is never lost to a connection reset.
    /// </summary>
    public void ReportFailure(int? failedRank, string message)
    {
        SendNotice(failedRank, message);
        if (Interlocked.Exchange(ref shutDown, 1) == 0)
        {
            Libc.Shutdown(dataRight, Libc.ShutWrite);
            Libc.Shutdown(controlLeft, Libc.ShutWrite);
            Libc.Shutdown(controlRight, Libc.ShutWrite);
        }
    }

    /// <summary>Ends every connection in both directions at once, as a crash does; wakes a collective blocked on them.</summary>
    public void ShutdownAll()
    {
        lock (noticeLock)
            noticeSent = true;
        Interlocked.Exchange(ref shutDown, 1);
        foreach (var fd in (ReadOnlySpan<int>)[dataLeft, dataRight, controlLeft, controlRight])
            Libc.Shutdown(fd, Libc.ShutReadWrite);
    }

    private void SendNotice(int? failedRank, string message)
    {
        lock (noticeLock)
        {
            if (noticeSent || shutDown != 0)
                return;
            noticeSent = true;
            var text = Encoding.UTF8.GetBytes(message.Length > 500 ? message[..500] : message);
            var bytes = new byte[NoticeHeaderBytes + text.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, NoticeMagic);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), failedRank ?? -1);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), Rank);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), text.Length);
            text.CopyTo(bytes, NoticeHeaderBytes);
            fixed (byte* p = bytes)
            {
                // Control connections carry nothing else, so a notice this small fits their buffers at once.
                foreach (var fd in (ReadOnlySpan<int>)[controlLeft, controlRight])
                {
                    var vector = new Libc.IoVec { Base = p, Length = (nuint)bytes.Length };
                    var header = new Libc.MessageHeader { Vectors = &vector, VectorCount = 1 };
                    Libc.SendMessage(fd, &header, Libc.MsgDontWait | Libc.MsgNoSignal);
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (var socket in sockets)
            socket.Dispose();
    }
}

/// <summary>The two connections a rank has with one neighbour.</summary>
internal readonly record struct RingConnections(Socket Data, Socket Control);

[Flags]
internal enum Side
{
    None = 0,
    Left = 1,
    Right = 2,
}

/// <summary>What arrived on a control connection.</summary>
internal enum ControlSignal
{
    None,
    Notice,
    Closed,
    Garbled,
}

/// <summary>A failure report passed around the ring.</summary>
internal readonly record struct Notice(int? FailedRank, int Reporter, string Message);
