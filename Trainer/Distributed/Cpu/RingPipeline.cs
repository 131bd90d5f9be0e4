using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// Runs one <see cref="RingSchedule"/> on the calling thread: a single loop that keeps the outgoing and the incoming
/// stream moving at once with non-blocking socket calls, reduces incoming chunks through a small reusable scratch
/// ring while they arrive, forwards each byte as soon as it is final, and sleeps in poll() only when neither
/// direction can move. Sends and direct receives use the tensor's own memory. Nothing is allocated unless it fails.
/// </summary>
internal sealed unsafe class RingPipeline : IDisposable
{
    private const long MaxIoBytes = 1 << 30;
    private const int NoticeGraceMilliseconds = 1000;

    private readonly RingTransport transport;
    private readonly byte* headers;
    private readonly byte* scratch;

    /// <param name="scratchBytes">
    /// Reduce-scatter receives land in this ring buffer before being reduced into the tensor: small enough to stay in
    /// cache (L3), large enough that one receive takes what the socket holds (4 MB measured best on loopback).
    /// A multiple of 8, so no element straddles its wrap-around.
    /// </param>
    public RingPipeline(RingTransport transport, long scratchBytes)
    {
        this.transport = transport;
        ScratchBytes = scratchBytes;
        headers = (byte*)NativeMemory.AlignedAlloc(2 * CollectiveHeader.Size, 64);
        scratch = (byte*)NativeMemory.AlignedAlloc((nuint)scratchBytes, 64);
    }

    private long ScratchBytes { get; }

    private int Rank => transport.Rank;
    private int LeftRank => transport.LeftRank;
    private int RightRank => transport.RightRank;

    /// <summary>Runs the collective; throws <see cref="DistributedException"/> (naming the rank at fault) if it cannot finish by <paramref name="deadline"/>.</summary>
    public void Run(in RingSchedule schedule, byte* data, in CollectiveHeader header, torch.ScalarType dataType, ReduceOp op, long deadline, TimeSpan timeout)
    {
        var sendHeader = headers;
        var receiveHeader = headers + CollectiveHeader.Size;
        *(CollectiveHeader*)sendHeader = header;
        var sendCount = schedule.SendCount;
        var receiveCount = schedule.ReceiveCount;

        // Item -1 of each stream is the header; items 0.. are the schedule's transmissions.
        var sendItem = -1;
        long sendOffset = 0;
        var receiveItem = -1;
        long receiveOffset = 0; // bytes of the current receive that arrived
        long receiveDone = 0;   // of which final (reduced where the receive reduces)
        var watch = Side.Left | Side.Right; // control connections still open

        while (true)
        {
            while (sendItem < sendCount && sendOffset == SendLength(schedule, sendItem))
            {
                sendItem++;
                sendOffset = 0;
            }
            while (receiveItem < receiveCount && receiveDone == ReceiveLength(schedule, receiveItem))
            {
                if (receiveItem == -1)
                    CheckHeader(header, *(CollectiveHeader*)receiveHeader);
                receiveItem++;
                receiveOffset = 0;
                receiveDone = 0;
            }
            if (sendItem == sendCount && receiveItem == receiveCount)
                return;

            var progressed = false;
            var wantOutput = false;
            var wantInput = false;

            if (sendItem < sendCount)
            {
                var available = Available(schedule, sendItem, receiveItem, receiveDone);
                if (available > sendOffset)
                {
                    byte* first;
                    long firstLength;
                    byte* second = null;
                    long secondLength = 0;
                    if (sendItem == -1)
                    {
                        first = sendHeader + sendOffset;
                        firstLength = CollectiveHeader.Size - sendOffset;
                        if (sendCount > 0)
                        {
                            // Header and the first data in one segment: one system call and one packet for small collectives.
                            second = data + schedule.Send(0).Offset;
                            secondLength = Math.Min(Available(schedule, 0, receiveItem, receiveDone), MaxIoBytes);
                        }
                    }
                    else
                    {
                        first = data + schedule.Send(sendItem).Offset + sendOffset;
                        firstLength = Math.Min(available - sendOffset, MaxIoBytes);
                    }
                    var sent = transport.Send(first, firstLength, second, secondLength);
                    if (sent > 0)
                    {
                        progressed = true;
                        if (sent <= firstLength)
                            sendOffset += sent;
                        else
                        {
                            sendItem = 0;
                            sendOffset = sent - firstLength;
                        }
                    }
                    else if (sent == RingTransport.WouldBlock)
                        wantOutput = true;
                    else
                        throw LostRight(header, $"sending failed: {ErrorName(-sent)}");
                }
            }

            if (receiveItem < receiveCount)
            {
                long received;
                if (receiveItem == -1)
                {
                    var firstLength = CollectiveHeader.Size - receiveOffset;
                    byte* second = null;
                    long secondLength = 0;
                    if (receiveCount > 0)
                    {
                        var (offset, length) = schedule.Receive(0);
                        if (schedule.ReceiveReduces(0))
                        {
                            second = scratch;
                            secondLength = Math.Min(length, ScratchBytes);
                        }
                        else
                        {
                            second = data + offset;
                            secondLength = Math.Min(length, MaxIoBytes);
                        }
                    }
                    received = transport.Receive(receiveHeader + receiveOffset, firstLength, second, secondLength);
                    if (received > 0)
                    {
                        if (received <= firstLength)
                            receiveDone = receiveOffset += received;
                        else
                        {
                            CheckHeader(header, *(CollectiveHeader*)receiveHeader);
                            receiveItem = 0;
                            receiveOffset = received - firstLength;
                            receiveDone = schedule.ReceiveReduces(0)
                                ? ReduceArrived(schedule, 0, data, dataType, op, receiveOffset, 0)
                                : receiveOffset;
                        }
                    }
                }
                else if (schedule.ReceiveReduces(receiveItem))
                {
                    var length = schedule.Receive(receiveItem).Length;
                    var position = receiveOffset % ScratchBytes;
                    var wanted = Math.Min(ScratchBytes - (receiveOffset - receiveDone), length - receiveOffset);
                    var firstLength = Math.Min(wanted, ScratchBytes - position);
                    received = transport.Receive(scratch + position, firstLength, scratch, wanted - firstLength);
                    if (received > 0)
                    {
                        receiveOffset += received;
                        receiveDone = ReduceArrived(schedule, receiveItem, data, dataType, op, receiveOffset, receiveDone);
                    }
                }
                else
                {
                    var (offset, length) = schedule.Receive(receiveItem);
                    received = transport.Receive(data + offset + receiveOffset, Math.Min(length - receiveOffset, MaxIoBytes), null, 0);
                    if (received > 0)
                        receiveDone = receiveOffset += received;
                }

                if (received > 0)
                    progressed = true;
                else if (received == RingTransport.WouldBlock)
                    wantInput = true;
                else
                    throw LostLeft(header, received == 0 ? "the connection was closed" : $"receiving failed: {ErrorName(-received)}");
            }

            // The timeout bounds the whole collective, even one that still trickles forward.
            var remaining = (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
            if (remaining <= 0)
                throw TimedOut(header, timeout, receiveItem == -1 && receiveOffset == 0, receiveItem < receiveCount);
            if (progressed)
                continue;
            var pollMilliseconds = (int)Math.Min(remaining + 1, int.MaxValue);
            var signalled = transport.Wait(wantInput, wantOutput, watch, pollMilliseconds);
            if ((signalled & Side.Left) != 0)
                watch = CheckControl(Side.Left, watch, header);
            if ((signalled & Side.Right) != 0)
                watch = CheckControl(Side.Right, watch, header);
        }
    }

    /// <summary>Acts on a control connection that woke us: a notice fails the collective; a close just stops the watch.</summary>
    private Side CheckControl(Side side, Side watch, in CollectiveHeader header)
    {
        switch (transport.ReadControl(side, 100, out var notice))
        {
            case ControlSignal.Notice:
                throw FromNotice(notice);
            case ControlSignal.Closed:
                // A neighbour that finished and exited closes it too; only the data stream can tell a loss.
                return watch & ~side;
            case ControlSignal.Garbled:
                var peer = side == Side.Left ? LeftRank : RightRank;
                throw new DistributedException(
                    $"Rank {peer} sent rank {Rank} unexpected bytes on the control connection during {header.Describe()}; is another program connected?",
                    peer);
            default:
                return watch;
        }
    }

    private static string ErrorName(long errno) => errno switch
    {
        104 => "connection reset by peer",
        32 => "broken pipe",
        110 => "connection timed out",
        113 => "no route to host",
        _ => $"errno {errno}",
    };

    private static long SendLength(in RingSchedule schedule, int item) =>
        item == -1 ? CollectiveHeader.Size : schedule.Send(item).Length;

    private static long ReceiveLength(in RingSchedule schedule, int item) =>
        item == -1 ? CollectiveHeader.Size : schedule.Receive(item).Length;

    /// <summary>Bytes of send <paramref name="item"/> that are final and may go out.</summary>
    private static long Available(in RingSchedule schedule, int item, int receiveItem, long receiveDone)
    {
        if (item == -1)
            return CollectiveHeader.Size;
        var dependency = schedule.SendDependency(item);
        if (dependency < 0 || receiveItem > dependency)
            return schedule.Send(item).Length;
        return receiveItem == dependency ? receiveDone : 0;
    }

    /// <summary>Reduces the whole elements that arrived in scratch into the tensor; returns the new count of final bytes.</summary>
    private long ReduceArrived(in RingSchedule schedule, int item, byte* data, torch.ScalarType dataType, ReduceOp op, long arrived, long done)
    {
        var (offset, length) = schedule.Receive(item);
        var end = arrived == length ? length : arrived - arrived % schedule.ElementSize;
        var average = op == ReduceOp.Avg && schedule.IsFinalReduction(item);
        while (done < end)
        {
            var position = done % ScratchBytes;
            var piece = Math.Min(end - done, ScratchBytes - position);
            var target = data + offset + done;
            Reduction.Combine(dataType, op, target, scratch + position, piece);
            if (average)
                Reduction.Divide(dataType, target, piece, schedule.WorldSize);
            done += piece;
        }
        return done;
    }

    private void CheckHeader(in CollectiveHeader expected, in CollectiveHeader received)
    {
        if (!received.Matches(expected))
            throw new DistributedException(
                $"Collective mismatch: rank {LeftRank} called {received.Describe()} while rank {Rank} called {expected.Describe()}. " +
                "Every rank must call the same collectives in the same order with the same sizes, dtypes and roots.",
                LeftRank);
    }

    private DistributedException LostLeft(in CollectiveHeader header, string how)
    {
        // If the left neighbour gave up because of another rank, the notice naming that rank is on its way.
        if (transport.TryAwaitNotice(Side.Left, NoticeGraceMilliseconds, out var notice))
            return FromNotice(notice);
        return Lost(LeftRank, "left", header, how);
    }

    private DistributedException LostRight(in CollectiveHeader header, string how)
    {
        if (transport.TryAwaitNotice(Side.Right, NoticeGraceMilliseconds, out var notice))
            return FromNotice(notice);
        return Lost(RightRank, "right", header, how);
    }

    private DistributedException Lost(int peer, string side, in CollectiveHeader header, string how)
    {
        var cause = $"Rank {peer} was lost: its connection to rank {Rank} ({side} neighbour) broke during {header.Describe()} ({how}); the process probably died or was killed.";
        return new DistributedException(cause, peer);
    }

    private DistributedException FromNotice(in Notice notice) =>
        new($"{notice.Message} [passed on to rank {Rank} by rank {notice.Reporter}]", notice.FailedRank) { Cause = notice.Message };

    private DistributedException TimedOut(in CollectiveHeader header, TimeSpan timeout, bool leftNeverJoined, bool waitingForInput)
    {
        if (!leftNeverJoined && transport.TryAwaitNotice(Side.None, NoticeGraceMilliseconds, out var notice))
            return FromNotice(notice); // the rank next to the stalled one timed out at the same moment and named it
        if (leftNeverJoined)
            return new CollectiveTimeoutException(
                $"Rank {LeftRank} did not join {header.Describe()} within the timeout of {timeout} (rank {Rank} waited for it); it is stalled, busy elsewhere, or calls a different sequence of collectives.",
                LeftRank);
        return waitingForInput
            ? new CollectiveTimeoutException($"{header.Describe()} timed out after {timeout} on rank {Rank} waiting for data from rank {LeftRank}.", LeftRank)
            : new CollectiveTimeoutException($"{header.Describe()} timed out after {timeout} on rank {Rank} waiting for rank {RightRank} to accept data.", RightRank);
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(headers);
        NativeMemory.AlignedFree(scratch);
    }
}
