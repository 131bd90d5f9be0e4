using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Trainer.Distributed.Store;

namespace Trainer.Tests.Distributed;

public sealed class StoreSecurityTests : IAsyncLifetime
{
    private const string Secret = "correct horse battery staple";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    // Short enough to keep the tests quick, long enough for an honest client's hello on a loaded machine.
    private static readonly TimeSpan ShortTimeout = TimeSpan.FromSeconds(1);

    private readonly CapturingLogger _log = new();
    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
            await owned.DisposeAsync();
        // An Error line means the server met an exception it did not expect.
        Assert.DoesNotContain(_log.Lines, line => line.StartsWith("Error", StringComparison.Ordinal));
    }

    private StoreServer StartServer(string? secret, TimeSpan? frameTimeout = null) => Own(StoreServer.Start(IPAddress.Loopback, 0,
        new StoreServerOptions { Secret = secret, HandshakeTimeout = ShortTimeout, FrameTimeout = frameTimeout ?? ShortTimeout }, _log));

    private async Task<StoreClient> ConnectAsync(StoreServer server, string? secret) =>
        Own(await StoreClient.ConnectAsync("127.0.0.1", server.Port, new StoreClientOptions { Secret = secret, Timeout = Patience }));

    private T Own<T>(T disposable) where T : IAsyncDisposable
    {
        lock (_owned)
            _owned.Add(disposable);
        return disposable;
    }

    /// <summary>A client already connected must keep working, and new clients must still get in.</summary>
    private async Task AssertServerStillServesAsync(StoreServer server, StoreClient bystander, string? secret)
    {
        var key = $"alive/{Guid.NewGuid():N}";
        await bystander.SetAsync(key, "yes"u8.ToArray());
        var newcomer = await ConnectAsync(server, secret);
        Assert.Equal("yes"u8.ToArray(), await newcomer.GetAsync(key));
    }

    [Fact]
    public async Task TheRightSecretGetsIn()
    {
        var server = StartServer(Secret);
        var writer = await ConnectAsync(server, Secret);
        var reader = await ConnectAsync(server, Secret);

        await writer.SetAsync("k", "v"u8.ToArray());

        Assert.Equal("v"u8.ToArray(), await reader.GetAsync("k"));
    }

    [Fact]
    public async Task AWrongSecretIsDroppedAndLogged()
    {
        var server = StartServer(Secret);
        var bystander = await ConnectAsync(server, Secret);

        var error = await Assert.ThrowsAsync<StoreAuthenticationException>(() => ConnectAsync(server, "guess"));

        Assert.Contains("refused this rank", error.Message);
        Assert.Contains("TRAINER_RUN_SECRET", error.Message);
        await _log.WaitForLineAsync(Patience, "Warning", "dropped connection", "wrong secret proof");
        await AssertServerStillServesAsync(server, bystander, Secret);
    }

    [Fact]
    public async Task AClientWithoutTheSecretIsTurnedAway()
    {
        var server = StartServer(Secret);

        var error = await Assert.ThrowsAsync<StoreAuthenticationException>(() => ConnectAsync(server, secret: null));

        Assert.Contains("requires a secret", error.Message);
        Assert.Contains("TRAINER_RUN_SECRET", error.Message);
        await using var raw = await RawConnection.OpenAsync(server.Port);
        var (secretRequired, _) = await raw.ReadChallengeAsync();
        Assert.True(secretRequired);
        await raw.SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Hello, 0).Byte(0).ToArray());
        await raw.AssertClosedByServerAsync();
        await _log.WaitForLineAsync(Patience, "dropped connection", "hello carried no secret proof");
    }

    [Fact]
    public async Task AClientWithASecretRefusesAnOpenStore()
    {
        var server = StartServer(secret: null);

        var error = await Assert.ThrowsAsync<StoreAuthenticationException>(() => ConnectAsync(server, Secret));

        Assert.Contains("is open but this rank has TRAINER_RUN_SECRET set", error.Message);
    }

    [Fact]
    public async Task WithoutASecretTheStoreIsOpen()
    {
        var server = StartServer(secret: null);
        await using var raw = await RawConnection.OpenAsync(server.Port);

        var (secretRequired, _) = await raw.ReadChallengeAsync();
        var client = await ConnectAsync(server, secret: null);
        await client.SetAsync("k", "v"u8.ToArray());

        Assert.False(secretRequired);
        Assert.True(await client.CheckAsync("k"));
    }

    [Fact]
    public async Task TheSecretNeverTravelsOnlyAProofOfIt()
    {
        using var fakeServer = new TcpListener(IPAddress.Loopback, 0);
        fakeServer.Start();
        var nonce = Enumerable.Range(0, StoreProtocol.NonceBytes).Select(i => (byte)i).ToArray();
        var connecting = StoreClient.ConnectAsync("127.0.0.1", ((IPEndPoint)fakeServer.LocalEndpoint).Port,
            new StoreClientOptions { Secret = Secret, ConnectTimeout = Patience });

        using var accepted = await fakeServer.AcceptTcpClientAsync().WaitAsync(Patience);
        var stream = accepted.GetStream();
        await stream.WriteAsync(new StoreProtocol.FrameBuilder(StoreOp.Challenge, 0).Byte(1).Raw(nonce).ToArray());
        var hello = await StoreProtocol.ReadFrameAsync(stream, StoreProtocol.MaxHandshakeFrameBytes, Patience, CancellationToken.None);
        await stream.WriteAsync(new StoreProtocol.FrameBuilder(StoreOp.Ok, 0).ToArray());
        await using var client = await connecting.WaitAsync(Patience);

        Assert.Equal(StoreOp.Hello, hello!.Value.Op);
        var proof = hello.Value.Payload[1..];
        Assert.Equal(StoreProtocol.ProofBytes, hello.Value.Payload[0]);
        Assert.Equal(StoreProtocol.Proof(Secret, nonce), proof);
        Assert.NotEqual(StoreProtocol.Proof(Secret, new byte[StoreProtocol.NonceBytes]), proof);
        Assert.Equal(-1, hello.Value.Payload.AsSpan().IndexOf(Encoding.UTF8.GetBytes(Secret)));
    }

    [Fact]
    public async Task ASilentConnectionIsDroppedAfterTheHandshakeTimeout()
    {
        var server = StartServer(Secret);
        var bystander = await ConnectAsync(server, Secret);
        var silent = new List<RawConnection>();
        for (var i = 0; i < 20; i++)
            silent.Add(Own(await RawConnection.OpenAsync(server.Port)));

        foreach (var connection in silent)
            await connection.AssertClosedByServerAsync();

        await _log.WaitForLineAsync(Patience, "Warning", "dropped connection", "no hello within 1 s");
        await AssertServerStillServesAsync(server, bystander, Secret);
    }

    [Fact]
    public async Task AFrameTrickledTooSlowlyIsDropped()
    {
        var server = StartServer(secret: null);
        var bystander = await ConnectAsync(server, null);
        await using var raw = await RawConnection.OpenAsync(server.Port);
        await raw.HelloAsync();

        await raw.SendAsync([0, 0, 0, 100, StoreProtocol.ProtocolVersion]);

        await raw.AssertClosedByServerAsync();
        await _log.WaitForLineAsync(Patience, "dropped connection", "frame not completed within 1 s");
        await AssertServerStillServesAsync(server, bystander, null);
    }

    [Fact]
    public async Task AClientThatNeverReadsItsAnswersIsDropped()
    {
        // 2 s, not 0.3: the bystander's own 2 MiB frame must arrive within the frame timeout too, on a loaded machine.
        var server = StartServer(secret: null, frameTimeout: TimeSpan.FromSeconds(2));
        var bystander = await ConnectAsync(server, null);
        await bystander.SetAsync("large", new byte[2 * 1024 * 1024]);
        await using var raw = await RawConnection.OpenAsync(server.Port);
        await raw.HelloAsync();

        for (var id = 1u; id <= 32; id++)
            await raw.SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Get, id).Key("large").Int64(1000).ToArray());

        await _log.WaitForLineAsync(Patience, "Warning", "dropped connection from", "did not read a", "response within 2 s");
        await AssertServerStillServesAsync(server, bystander, null);
    }

    [Fact]
    public async Task OutstandingWaitsPerConnectionAreCapped()
    {
        await using var server = StoreServer.Start(IPAddress.Loopback, 0, new StoreServerOptions { MaxPendingWaitsPerConnection = 4 }, _log);
        var client = await ConnectAsync(server, null);
        var parked = Enumerable.Range(0, 4).Select(i => client.GetAsync($"later/{i}", Patience)).ToList();
        await client.WaitAsync(["never"], TimeSpan.Zero).ContinueWith(_ => { }); // the 4 gets are filed before this one is refused

        var error = await Assert.ThrowsAsync<StoreException>(() => client.GetAsync("one-too-many", Patience));

        Assert.Contains("more than 4 waits outstanding", error.Message);
        for (var i = 0; i < 4; i++)
            await client.SetAsync($"later/{i}", "v"u8.ToArray());
        await Task.WhenAll(parked).WaitAsync(Patience);
        Assert.Equal("v"u8.ToArray(), await client.GetAsync("later/0", Patience));
    }

    public static TheoryData<string> BadInputs => new()
    {
        "garbage before the hello", "oversized frame before the hello", "request before the hello", "oversized frame",
        "wrong version", "unknown opcode", "truncated payload", "response sent as a request", "key of invalid UTF-8",
        "key longer than the limit", "negative timeout", "trailing bytes", "wait for too many keys",
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task MalformedInputDropsOnlyThatConnection(string input)
    {
        var server = StartServer(secret: null);
        var bystander = await ConnectAsync(server, null);
        var pendingGet = bystander.GetAsync("set-later");
        await using var raw = await RawConnection.OpenAsync(server.Port);
        await raw.ReadChallengeAsync();

        var (bytes, logged) = Malformed(input);
        if (input.Contains("before the hello"))
            await raw.SendAsync(bytes);
        else
        {
            await raw.HelloAsync(challengeRead: true);
            await raw.SendAsync(bytes);
        }

        await raw.AssertClosedByServerAsync();
        await _log.WaitForLineAsync(Patience, "Warning", "dropped connection", logged);
        await AssertServerStillServesAsync(server, bystander, null);
        await bystander.SetAsync("set-later", "ok"u8.ToArray());
        Assert.Equal("ok"u8.ToArray(), await pendingGet.WaitAsync(Patience));
    }

    private static (byte[] Bytes, string Logged) Malformed(string input)
    {
        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        garbage[0] = 0x7f; // make the announced length absurd
        return input switch
        {
            "garbage before the hello" => (garbage, "frame length"),
            "oversized frame before the hello" => (new StoreProtocol.FrameBuilder(StoreOp.Hello, 0).Raw(new byte[1024]).ToArray(), "frame length"),
            "request before the hello" => (new StoreProtocol.FrameBuilder(StoreOp.Set, 1).Key("k").Bytes("v"u8).ToArray(), "first frame is Set"),
            "oversized frame" => ([0xff, 0xff, 0xff, 0xf0, StoreProtocol.ProtocolVersion, (byte)StoreOp.Set], "frame length 4294967280"),
            "wrong version" => (WithByte(new StoreProtocol.FrameBuilder(StoreOp.Check, 1).Key("k").ToArray(), 4, 99), "protocol version 99"),
            "unknown opcode" => (WithByte(new StoreProtocol.FrameBuilder(StoreOp.Check, 1).Key("k").ToArray(), 5, 0x42), "unknown opcode 0x42"),
            "truncated payload" => (new StoreProtocol.FrameBuilder(StoreOp.Set, 1).UInt16(100).Raw("abc"u8).ToArray(), "payload ends"),
            "response sent as a request" => (new StoreProtocol.FrameBuilder(StoreOp.Value, 1).Bytes("v"u8).ToArray(), "Value is not a request"),
            "key of invalid UTF-8" => (new StoreProtocol.FrameBuilder(StoreOp.Check, 1).UInt16(2).Raw([0xc3, 0x28]).ToArray(), "not valid UTF-8"),
            "key longer than the limit" => (new StoreProtocol.FrameBuilder(StoreOp.Check, 1).UInt16(StoreProtocol.MaxKeyBytes + 1).Raw(new byte[StoreProtocol.MaxKeyBytes + 1]).ToArray(),
                "exceeds 4096"),
            "negative timeout" => (new StoreProtocol.FrameBuilder(StoreOp.Get, 1).Key("k").Int64(-5).ToArray(), "timeout of -5 ms"),
            "trailing bytes" => (new StoreProtocol.FrameBuilder(StoreOp.Check, 1).Key("k").Raw([1, 2, 3]).ToArray(), "3 unexpected bytes"),
            "wait for too many keys" => (new StoreProtocol.FrameBuilder(StoreOp.Wait, 1).UInt16(StoreProtocol.MaxKeysPerWait + 1).ToArray(), "wait for 4097 keys"),
            _ => throw new ArgumentOutOfRangeException(nameof(input), input, null),
        };
    }

    private static byte[] WithByte(byte[] frame, int index, byte value)
    {
        frame[index] = value;
        return frame;
    }

    [Fact]
    public async Task RandomFramesNeverTakeTheServerDown()
    {
        var server = StartServer(secret: null);
        var bystander = await ConnectAsync(server, null);
        var random = new Random(1234);
        var opcodes = Enum.GetValues<StoreOp>();

        for (var i = 0; i < 60; i++)
        {
            await using var raw = await RawConnection.OpenAsync(server.Port);
            await raw.HelloAsync();
            var payload = new byte[random.Next(0, 64)];
            random.NextBytes(payload);
            var frame = new StoreProtocol.FrameBuilder(opcodes[random.Next(opcodes.Length)], (uint)random.Next()).Raw(payload).ToArray();
            await raw.SendAsync(frame);
        }

        await AssertServerStillServesAsync(server, bystander, null);
    }

    [Fact]
    public void LengthPrefixIsBigEndian()
    {
        var frame = new StoreProtocol.FrameBuilder(StoreOp.Check, 7).Key("k").ToArray();

        Assert.Equal((uint)(frame.Length - 4), BinaryPrimitives.ReadUInt32BigEndian(frame));
        Assert.Equal(StoreProtocol.ProtocolVersion, frame[4]);
        Assert.Equal((byte)StoreOp.Check, frame[5]);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(6)));
    }

    /// <summary>A hand-driven socket speaking (or breaking) the store protocol.</summary>
    private sealed class RawConnection : IAsyncDisposable
    {
        private readonly TcpClient _tcp;

        private RawConnection(TcpClient tcp) => _tcp = tcp;

        private NetworkStream Stream => _tcp.GetStream();

        public static async Task<RawConnection> OpenAsync(int port)
        {
            var tcp = new TcpClient(AddressFamily.InterNetwork);
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            return new RawConnection(tcp);
        }

        public async Task<(bool SecretRequired, byte[] Nonce)> ReadChallengeAsync()
        {
            var challenge = await StoreProtocol.ReadFrameAsync(Stream, StoreProtocol.MaxHandshakeFrameBytes, Patience, CancellationToken.None);
            Assert.Equal(StoreOp.Challenge, challenge!.Value.Op);
            return (challenge.Value.Payload[0] != 0, challenge.Value.Payload[1..]);
        }

        /// <summary>The hello of an open store (no proof); waits for the server's Ok.</summary>
        public async Task HelloAsync(bool challengeRead = false)
        {
            if (!challengeRead)
                await ReadChallengeAsync();
            await SendAsync(new StoreProtocol.FrameBuilder(StoreOp.Hello, 0).Byte(0).ToArray());
            var ok = await StoreProtocol.ReadFrameAsync(Stream, StoreProtocol.MaxHandshakeFrameBytes, Patience, CancellationToken.None);
            Assert.Equal(StoreOp.Ok, ok!.Value.Op);
        }

        public async Task SendAsync(byte[] bytes)
        {
            try
            {
                await Stream.WriteAsync(bytes);
            }
            catch (IOException)
            {
                // The server may already have hung up on the first bytes.
            }
        }

        /// <summary>Reads (and ignores, e.g. an error frame) until the server closes the connection.</summary>
        public async Task AssertClosedByServerAsync()
        {
            using var deadline = new CancellationTokenSource(Patience);
            var buffer = new byte[4096];
            try
            {
                while (await Stream.ReadAsync(buffer, deadline.Token) > 0)
                {
                }
            }
            catch (IOException)
            {
                // Reset by the server: closed as well.
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"the server did not close the connection within {Patience.TotalSeconds} s");
            }
        }

        public ValueTask DisposeAsync()
        {
            _tcp.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
