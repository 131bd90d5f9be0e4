using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;
using Trainer.Distributed;
using Trainer.Distributed.Cpu;

namespace Trainer.Tests.Distributed;

/// <summary>Inputs, tensors and serial references for the collective tests.</summary>
internal static class TestData
{
    public static readonly torch.ScalarType[] CpuTypes = [torch.ScalarType.Float32, torch.ScalarType.Float64, torch.ScalarType.Int64];
    public static readonly ReduceOp[] Ops = [ReduceOp.Sum, ReduceOp.Avg, ReduceOp.Max, ReduceOp.Min];

    public static int ElementSize(torch.ScalarType type) => type == torch.ScalarType.Float32 ? 4 : 8;

    /// <summary>Random values of mixed magnitudes, so that a float sum depends on its order.</summary>
    public static byte[] Random(torch.ScalarType type, long count, int seed)
    {
        var rng = new Random(seed);
        return type switch
        {
            torch.ScalarType.Float32 => Bytes(Enumerable.Range(0, (int)count).Select(_ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-12, 12)))).ToArray()),
            torch.ScalarType.Float64 => Bytes(Enumerable.Range(0, (int)count).Select(_ => (rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-40, 40))).ToArray()),
            _ => Bytes(Enumerable.Range(0, (int)count).Select(_ => rng.NextInt64(-1_000_000_000_000, 1_000_000_000_000)).ToArray()),
        };
    }

    public static byte[] Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    public static torch.Tensor Tensor(torch.ScalarType type, byte[] bytes)
    {
        var tensor = torch.empty(bytes.Length / ElementSize(type), type);
        if (bytes.Length > 0)
            tensor.bytes = bytes;
        return tensor;
    }

    public static byte[] Read(torch.Tensor tensor) => tensor.numel() == 0 ? [] : tensor.bytes.ToArray();

    /// <summary>
    /// The all-reduce computed serially in exactly the CPU backend's order: small tensors reduce in rank order
    /// 0, 1, ..., N-1; larger ones reduce chunk c (of the ring's N chunks) in order c, c+1, ..., c+N-1 (mod N).
    /// Results must then match bit for bit, floats included.
    /// </summary>
    public static byte[] AllReduceReference(torch.ScalarType type, byte[][] inputs, ReduceOp op) => type switch
    {
        torch.ScalarType.Float32 => Reduce<float>(inputs, op),
        torch.ScalarType.Float64 => Reduce<double>(inputs, op),
        _ => Reduce<long>(inputs, op),
    };

    private static byte[] Reduce<T>(byte[][] inputs, ReduceOp op) where T : unmanaged, INumber<T>
    {
        var worldSize = inputs.Length;
        var values = inputs.Select(b => MemoryMarshal.Cast<byte, T>(b).ToArray()).ToArray();
        var count = values[0].Length;
        var small = (long)count * Marshal.SizeOf<T>() <= CpuProcessGroup.SmallAllReduceBytes;
        var result = new T[count];
        for (var c = 0; c < worldSize; c++)
        {
            var (start, length) = small ? (0L, (long)count) : RingSchedule.ChunkElements(count, worldSize, c);
            var first = small ? 0 : c;
            for (var i = start; i < start + length; i++)
            {
                var accumulator = values[first][i];
                for (var k = 1; k < worldSize; k++)
                {
                    var other = values[(first + k) % worldSize][i];
                    accumulator = op switch
                    {
                        ReduceOp.Max => T.Max(accumulator, other),
                        ReduceOp.Min => T.Min(accumulator, other),
                        _ => accumulator + other,
                    };
                }
                result[i] = op == ReduceOp.Avg ? accumulator / T.CreateChecked(worldSize) : accumulator;
            }
            if (small)
                break;
        }
        return Bytes(result);
    }

    public static void AssertSame(byte[] expected, byte[] actual, int elementSize, string context)
    {
        Assert.True(expected.Length == actual.Length, $"{context}: expected {expected.Length} bytes, got {actual.Length}.");
        var span = expected.AsSpan();
        if (span.SequenceEqual(actual))
            return;
        var index = span.CommonPrefixLength(actual) / elementSize;
        Assert.Fail($"{context}: first difference at element {index}: expected bytes {Convert.ToHexString(expected, (int)index * elementSize, elementSize)}, got {Convert.ToHexString(actual, (int)index * elementSize, elementSize)}.");
    }
}
