using System.Buffers.Binary;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Trainer.Tests.Faults;

/// <summary>
/// Rank 0's store under attack during a real run: thousands of random, malformed, unauthenticated, oversized and
/// trickled (slowloris) frames from strangers without the run secret. They are refused and the run completes.
/// </summary>
[Collection("Faults")]
public sealed class StoreFuzzTests(ITestOutputHelper log)
{
    [Fact]
    public async Task Thousands_of_hostile_frames_at_rank_0s_store_during_a_run_are_refused_and_the_run_completes()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 256, epochs: 2));
        using var stop = new CancellationTokenSource();
        var fuzzer = new StoreFuzzer(run.Port, seed: 1234);
        var attacks = Enumerable.Range(0, 6).Select(i => Task.Run(() => fuzzer.AttackAsync(i, stop.Token))).ToList();
        attacks.Add(Task.Run(() => fuzzer.SlowlorisAsync(stop.Token)));

        var exitCodes = await run.WaitAsync(RankLossTests.Patience);
        await stop.CancelAsync();
        await Task.WhenAll(attacks);

        log.WriteLine($"during the run: {fuzzer}");
        Assert.True(exitCodes.All(code => code == 0), run.ToString());
        Assert.True(File.Exists(Path.Combine(output.Path, "summary.json")));
        Assert.True(fuzzer.Frames >= 2000, $"only {fuzzer} reached the store while the run lasted");
        Assert.Equal(0, fuzzer.Accepted);
        // The flood is refused quietly: a bounded number of log lines, not one per connection.
        var windows = (int)(run.Clock.Elapsed / Trainer.Distributed.Store.DropLog.Window) + 2;
        var dropLines = run[0].Count("store: dropped connection from");
        log.WriteLine($"rank 0 logged {dropLines} dropped connections and {run[0].Count("more connections were dropped")} summaries");
        Assert.InRange(dropLines, 1, windows * Trainer.Distributed.Store.DropLog.Burst);
    }
}

/// <summary>A stranger at the store's port: no secret, so nothing it sends may be obeyed.</summary>
internal sealed class StoreFuzzer(int port, int seed)
{
    private long _connections;
    private long _frames;
    private long _accepted;
    private long _slowloris;

    public long Frames => Interlocked.Read(ref _frames);

    /// <summary>Answers of Ok to anything but a hello, i.e. requests the store carried out for a stranger.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    public override string ToString() =>
        $"{Frames} hostile frames over {Interlocked.Read(ref _connections)} connections, {Interlocked.Read(ref _slowloris)} slowloris connections, {Accepted} obeyed";

    public async Task AttackAsync(int worker, CancellationToken stop)
    {
        var random = new Random(seed + worker);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                using var tcp = new TcpClient { NoDelay = true };
                await tcp.ConnectAsync("127.0.0.1", port, stop);
                Interlocked.Increment(ref _connections);
                var stream = tcp.GetStream();
                switch (random.Next(6))
                {
                    case 0: // noise
                        await SendAsync(stream, RandomBytes(random, random.Next(1, 600)), stop);
                        break;
                    case 1: // an oversized frame: the length alone must be refused
                        var huge = new byte[4];
                        BinaryPrimitives.WriteUInt32BigEndian(huge, random.Next(2) == 0 ? uint.MaxValue : (uint)random.Next(300, int.MaxValue));
                        await SendAsync(stream, huge, stop);
                        break;
                    case 2: // a hello with a made-up proof, then requests as if it had worked
                        await ReadChallengeAsync(stream, stop);
                        await SendAsync(stream, Frame(random, op: 0x02, payload: [32, .. RandomBytes(random, 32)]), stop);
                        for (var i = random.Next(1, 10); i > 0; i--)
                            await SendAsync(stream, Frame(random, op: (byte)random.Next(0x10, 0x17), payload: RandomBytes(random, random.Next(0, 200))), stop);
                        await ExpectNoObedienceAsync(stream, stop);
                        break;
                    case 3: // no hello at all: requests straight away
                        for (var i = random.Next(1, 20); i > 0; i--)
                            await SendAsync(stream, Frame(random, op: (byte)random.Next(0x10, 0x17), payload: RandomBytes(random, random.Next(0, 200))), stop);
                        await ExpectNoObedienceAsync(stream, stop);
                        break;
                    case 4: // frames of any version and opcode
                        for (var i = random.Next(1, 20); i > 0; i--)
                            await SendAsync(stream, Frame(random, op: (byte)random.Next(256), payload: RandomBytes(random, random.Next(0, 200)), version: (byte)random.Next(3)), stop);
                        break;
                    default: // a hello without proof
                        await ReadChallengeAsync(stream, stop);
                        await SendAsync(stream, Frame(random, op: 0x02, payload: [0]), stop);
                        await ExpectNoObedienceAsync(stream, stop);
                        break;
                }
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
            {
                // Refused, reset or dropped: that is the store doing its job.
            }
            await Task.Delay(1, CancellationToken.None);
        }
    }

    /// <summary>Connections that trickle a byte at a time and never finish a frame; the store must drop them and serve on.</summary>
    public async Task SlowlorisAsync(CancellationToken stop)
    {
        var random = new Random(seed - 1);
        var open = new List<Task>();
        while (!stop.IsCancellationRequested)
        {
            open.RemoveAll(t => t.IsCompleted);
            while (open.Count < 40)
                open.Add(TrickleAsync(random.Next(), stop));
            try
            {
                await Task.Delay(200, stop);
            }
            catch (OperationCanceledException)
            {
            }
        }
        await Task.WhenAll(open);
    }

    private async Task TrickleAsync(int seed, CancellationToken stop)
    {
        var random = new Random(seed);
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", port, stop);
            Interlocked.Increment(ref _slowloris);
            var stream = tcp.GetStream();
            var frame = Frame(random, op: 0x02, payload: [32, .. RandomBytes(random, 32)]);
            foreach (var b in frame)
            {
                await stream.WriteAsync(new[] { b }, stop);
                await Task.Delay(random.Next(500, 1500), stop);
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
        }
    }

    private async Task SendAsync(NetworkStream stream, byte[] bytes, CancellationToken stop)
    {
        await stream.WriteAsync(bytes, stop);
        Interlocked.Increment(ref _frames);
    }

    private static async Task ReadChallengeAsync(NetworkStream stream, CancellationToken stop)
    {
        var challenge = new byte[4 + 6 + 33];
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(TimeSpan.FromSeconds(5));
        await stream.ReadExactlyAsync(challenge, deadline.Token);
    }

    /// <summary>Reads what the store answers for a moment: an Error or a closed connection is fine; Ok, a Value or an Integer is not.</summary>
    private async Task ExpectNoObedienceAsync(NetworkStream stream, CancellationToken stop)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(TimeSpan.FromMilliseconds(200));
        var header = new byte[10];
        try
        {
            while (true)
            {
                await stream.ReadExactlyAsync(header, deadline.Token);
                var length = BinaryPrimitives.ReadUInt32BigEndian(header);
                var op = header[5];
                if (op is 0x80 or 0x81 or 0x82 or 0x83 or 0x84)
                    Interlocked.Increment(ref _accepted);
                var rest = new byte[Math.Min(length - 6, 1 << 16)];
                await stream.ReadExactlyAsync(rest, deadline.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException)
        {
        }
    }

    private static byte[] Frame(Random random, byte op, byte[] payload, byte version = 1)
    {
        var frame = new byte[10 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(6 + payload.Length));
        frame[4] = version;
        frame[5] = op;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(6), (uint)random.Next());
        payload.CopyTo(frame, 10);
        return frame;
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
