// Wire format of the rendezvous store (StoreServer <-> StoreClient), version 1.
//
// Every message, in both directions, is one frame:
//
//   u32  length    big-endian byte count of everything after this field (5 + payload), at most MaxFrameBytes
//   u8   version   ProtocolVersion; a frame of any other version drops the connection
//   u8   opcode    StoreOp
//   u32  id        big-endian request id, echoed by its response (0 during the handshake)
//   ...  payload   the opcode's fields, in order, using these encodings:
//                    key   = u16 big-endian byte count + UTF-8 bytes (at most MaxKeyBytes)
//                    bytes = u32 big-endian byte count + bytes (at most MaxValueBytes)
//                    i64   = big-endian two's complement
//                    ms    = i64 timeout in milliseconds, 0..MaxTimeoutMilliseconds
//
// Handshake (the first frames of every connection, secret or not):
//   server -> Challenge  u8 authRequired, 32-byte random nonce
//   client -> Hello      u8 proof length (0 or 32), proof = HMAC-SHA256(key: UTF-8 secret, data: HelloContext + nonce)
//   server -> Ok, or Error(reason) and close. The secret never travels; a client that sends no valid Hello within
//   the handshake timeout is dropped.
//
// Requests and their responses (any request may instead get Error(key-encoded message) when understood but refused):
//   Set(key, bytes value)                          -> Ok
//   Get(key, ms timeout)                           -> Value(bytes) once the key exists | TimedOut(u16 count, missing keys)
//   Add(key, i64 delta)                            -> Integer(i64 new value); counters are stored as decimal ASCII
//   CompareSet(key, bytes expected, bytes desired) -> Value(bytes after the operation); empty expected = missing key
//   Wait(u16 count, key x count, ms timeout)       -> Ok once all keys exist | TimedOut(u16 count, missing keys)
//   Check(key)                                     -> Flag(u8 0/1)
//   Delete(key)                                    -> Flag(u8 1 when the key existed)
//
// Requests on one connection may be outstanding at the same time; responses can come back in any order.

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Trainer.Distributed.Store;

internal enum StoreOp : byte
{
    Challenge = 0x01,
    Hello = 0x02,

    Set = 0x10,
    Get = 0x11,
    Add = 0x12,
    CompareSet = 0x13,
    Wait = 0x14,
    Check = 0x15,
    Delete = 0x16,

    Ok = 0x80,
    Value = 0x81,
    Integer = 0x82,
    Flag = 0x83,
    TimedOut = 0x84,
    Error = 0x85,
}

/// <summary>A frame that breaks the protocol (bad length, version, opcode or field); the connection is dropped.</summary>
internal sealed class StoreProtocolException(string message) : IOException(message);

internal readonly record struct StoreFrame(StoreOp Op, uint Id, byte[] Payload);

internal static class StoreProtocol
{
    public const byte ProtocolVersion = 1;
    public const int MaxKeyBytes = 4 * 1024;
    public const int MaxValueBytes = 64 * 1024 * 1024;
    public const int MaxKeysPerWait = 4096;
    public const long MaxTimeoutMilliseconds = 7L * 24 * 3600 * 1000;
    public const int NonceBytes = 32;
    public const int ProofBytes = 32;

    /// <summary>Fits the largest request: a compare-and-set of two maximal values.</summary>
    public const int MaxFrameBytes = HeaderBytes + 2 + MaxKeyBytes + 2 * (4 + MaxValueBytes);

    /// <summary>Frames allowed before the handshake completes; nothing larger than a Hello is needed.</summary>
    public const int MaxHandshakeFrameBytes = 256;

    /// <summary>Version, opcode and request id.</summary>
    private const int HeaderBytes = 6;

    private static readonly byte[] HelloContext = "trainer-store/1 hello"u8.ToArray();

    /// <summary>
    /// TCP keep-alive probes after 5 s of silence, every 2 s, 3 unanswered = dead: a peer whose host died or dropped
    /// off the network is noticed in about 11 s, without any traffic of ours (a blocked wait sends nothing).
    /// </summary>
    public static void EnableKeepAlive(System.Net.Sockets.Socket socket)
    {
        socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveTime, 5);
        socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveInterval, 2);
        socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveRetryCount, 3);
    }

    public static byte[] Proof(string secret, ReadOnlySpan<byte> nonce)
    {
        var data = new byte[HelloContext.Length + nonce.Length];
        HelloContext.CopyTo(data, 0);
        nonce.CopyTo(data.AsSpan(HelloContext.Length));
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), data);
    }

    /// <summary>
    /// Reads one frame; null when the peer closed the connection cleanly between frames. Once the first byte of a
    /// frame has arrived the rest must follow within <paramref name="frameTimeout"/>, so a peer that trickles a
    /// frame cannot hold the reader forever. Memory grows with the bytes actually received, not the announced length.
    /// </summary>
    public static async Task<StoreFrame?> ReadFrameAsync(Stream stream, int maxFrameBytes, TimeSpan frameTimeout, CancellationToken cancellationToken)
    {
        var prefix = new byte[4];
        if (await stream.ReadAsync(prefix.AsMemory(0, 1), cancellationToken) == 0)
            return null;

        using var frameDeadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        frameDeadline.CancelAfter(frameTimeout);
        try
        {
            await stream.ReadExactlyAsync(prefix.AsMemory(1), frameDeadline.Token);
            var length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
            if (length < HeaderBytes || length > (uint)maxFrameBytes)
                throw new StoreProtocolException($"frame length {length} is outside {HeaderBytes}..{maxFrameBytes}");

            var body = new byte[Math.Min(length, 64 * 1024)];
            var received = 0;
            while (received < length)
            {
                if (received == body.Length)
                    Array.Resize(ref body, (int)Math.Min(length, 2L * body.Length));
                var read = await stream.ReadAsync(body.AsMemory(received), frameDeadline.Token);
                if (read == 0)
                    throw new StoreProtocolException($"connection closed {length - received} bytes into a {length}-byte frame");
                received += read;
            }

            if (body[0] != ProtocolVersion)
                throw new StoreProtocolException($"protocol version {body[0]} is not {ProtocolVersion}; run the same Trainer build on every rank");
            var op = (StoreOp)body[1];
            if (!Enum.IsDefined(op))
                throw new StoreProtocolException($"unknown opcode 0x{body[1]:x2}");
            return new StoreFrame(op, BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(2)), body[HeaderBytes..]);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new StoreProtocolException($"frame not completed within {frameTimeout.TotalSeconds:0.###} s");
        }
        catch (EndOfStreamException)
        {
            throw new StoreProtocolException("connection closed inside a frame header");
        }
    }

    /// <summary>Builds one frame in memory so it can be written with a single call.</summary>
    public sealed class FrameBuilder
    {
        private readonly MemoryStream _buffer = new();

        public FrameBuilder(StoreOp op, uint id)
        {
            Span<byte> header = stackalloc byte[4 + HeaderBytes];
            header[4] = ProtocolVersion;
            header[5] = (byte)op;
            BinaryPrimitives.WriteUInt32BigEndian(header[6..], id);
            _buffer.Write(header);
        }

        public FrameBuilder Key(string key)
        {
            var bytes = Encoding.UTF8.GetBytes(key);
            if (bytes.Length > MaxKeyBytes)
                throw new ArgumentException($"store key '{key[..Math.Min(key.Length, 64)]}…' is {bytes.Length} bytes; keys are at most {MaxKeyBytes} bytes.", nameof(key));
            return UInt16((ushort)bytes.Length).Raw(bytes);
        }

        public FrameBuilder Bytes(ReadOnlySpan<byte> value)
        {
            if (value.Length > MaxValueBytes)
                throw new ArgumentException($"store value of {value.Length} bytes exceeds the limit of {MaxValueBytes} bytes.", nameof(value));
            Span<byte> length = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)value.Length);
            return Raw(length).Raw(value);
        }

        public FrameBuilder Int64(long value)
        {
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(bytes, value);
            return Raw(bytes);
        }

        public FrameBuilder UInt16(ushort value)
        {
            Span<byte> bytes = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
            return Raw(bytes);
        }

        public FrameBuilder Byte(byte value) => Raw([value]);

        public FrameBuilder Raw(ReadOnlySpan<byte> bytes)
        {
            _buffer.Write(bytes);
            return this;
        }

        public byte[] ToArray()
        {
            var frame = _buffer.ToArray();
            BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(frame.Length - 4));
            return frame;
        }
    }

    /// <summary>Reads the fields of a payload in order; any field that runs past the end or breaks a limit is malformed.</summary>
    public ref struct PayloadReader(ReadOnlySpan<byte> payload)
    {
        private ReadOnlySpan<byte> _rest = payload;

        public string Key()
        {
            var length = UInt16();
            if (length > MaxKeyBytes)
                throw new StoreProtocolException($"key of {length} bytes exceeds {MaxKeyBytes}");
            try
            {
                return new UTF8Encoding(false, true).GetString(Take(length));
            }
            catch (DecoderFallbackException)
            {
                throw new StoreProtocolException("key is not valid UTF-8");
            }
        }

        public byte[] Bytes()
        {
            var length = BinaryPrimitives.ReadUInt32BigEndian(Take(4));
            if (length > MaxValueBytes)
                throw new StoreProtocolException($"value of {length} bytes exceeds {MaxValueBytes}");
            return Take((int)length).ToArray();
        }

        public long Int64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

        public ushort UInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

        public byte Byte() => Take(1)[0];

        public TimeSpan Timeout()
        {
            var milliseconds = Int64();
            if (milliseconds is < 0 or > MaxTimeoutMilliseconds)
                throw new StoreProtocolException($"timeout of {milliseconds} ms is outside 0..{MaxTimeoutMilliseconds}");
            return TimeSpan.FromMilliseconds(milliseconds);
        }

        public ReadOnlySpan<byte> Take(int count)
        {
            if (count > _rest.Length)
                throw new StoreProtocolException($"payload ends {count - _rest.Length} bytes early");
            var taken = _rest[..count];
            _rest = _rest[count..];
            return taken;
        }

        /// <summary>Trailing bytes mean the sender and receiver disagree about the layout.</summary>
        public readonly void End()
        {
            if (!_rest.IsEmpty)
                throw new StoreProtocolException($"{_rest.Length} unexpected bytes after the payload");
        }
    }
}
