using System.Numerics;
using TorchSharp;

namespace Trainer.Distributed.Cpu;

/// <summary>Vectorised element-wise reductions on raw tensor memory: accumulator = accumulator op other.</summary>
internal static unsafe class Reduction
{
    public static void Combine(torch.ScalarType dataType, ReduceOp op, byte* accumulator, byte* other, long bytes)
    {
        switch (dataType)
        {
            case torch.ScalarType.Float32:
                Combine(op, (float*)accumulator, (float*)other, bytes / sizeof(float));
                break;
            case torch.ScalarType.Float64:
                Combine(op, (double*)accumulator, (double*)other, bytes / sizeof(double));
                break;
            case torch.ScalarType.Int64:
                Combine(op, (long*)accumulator, (long*)other, bytes / sizeof(long));
                break;
            default:
                throw new NotSupportedException($"The CPU backend cannot reduce {dataType} tensors.");
        }
    }

    /// <summary>The last step of <see cref="ReduceOp.Avg"/>: divides by the world size (integers truncate toward zero).</summary>
    public static void Divide(torch.ScalarType dataType, byte* data, long bytes, int divisor)
    {
        switch (dataType)
        {
            case torch.ScalarType.Float32:
                Divide((float*)data, bytes / sizeof(float), divisor);
                break;
            case torch.ScalarType.Float64:
                Divide((double*)data, bytes / sizeof(double), divisor);
                break;
            case torch.ScalarType.Int64:
                var values = (long*)data;
                for (long i = 0, n = bytes / sizeof(long); i < n; i++)
                    values[i] /= divisor;
                break;
            default:
                throw new NotSupportedException($"The CPU backend cannot average {dataType} tensors.");
        }
    }

    private static void Combine<T>(ReduceOp op, T* accumulator, T* other, long count) where T : unmanaged, INumber<T>
    {
        switch (op)
        {
            case ReduceOp.Sum:
            case ReduceOp.Avg:
                Apply<T, AddOperation<T>>(accumulator, other, count);
                break;
            case ReduceOp.Max:
                Apply<T, MaxOperation<T>>(accumulator, other, count);
                break;
            case ReduceOp.Min:
                Apply<T, MinOperation<T>>(accumulator, other, count);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown ReduceOp.");
        }
    }

    private static void Apply<T, TOperation>(T* accumulator, T* other, long count)
        where T : unmanaged, INumber<T>
        where TOperation : struct, IBinaryOperation<T>
    {
        long i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var width = Vector<T>.Count;
            for (; i <= count - 4 * width; i += 4 * width)
            {
                Vector.Store(TOperation.Invoke(Vector.Load(accumulator + i), Vector.Load(other + i)), accumulator + i);
                Vector.Store(TOperation.Invoke(Vector.Load(accumulator + i + width), Vector.Load(other + i + width)), accumulator + i + width);
                Vector.Store(TOperation.Invoke(Vector.Load(accumulator + i + 2 * width), Vector.Load(other + i + 2 * width)), accumulator + i + 2 * width);
                Vector.Store(TOperation.Invoke(Vector.Load(accumulator + i + 3 * width), Vector.Load(other + i + 3 * width)), accumulator + i + 3 * width);
            }
            for (; i <= count - width; i += width)
                Vector.Store(TOperation.Invoke(Vector.Load(accumulator + i), Vector.Load(other + i)), accumulator + i);
        }
        for (; i < count; i++)
            accumulator[i] = TOperation.Invoke(accumulator[i], other[i]);
    }

    private static void Divide<T>(T* data, long count, int divisor) where T : unmanaged, INumber<T>
    {
        var d = T.CreateChecked(divisor);
        long i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vd = new Vector<T>(d);
            for (; i <= count - Vector<T>.Count; i += Vector<T>.Count)
                Vector.Store(Vector.Load(data + i) / vd, data + i);
        }
        for (; i < count; i++)
            data[i] /= d;
    }

    private interface IBinaryOperation<T> where T : unmanaged, INumber<T>
    {
        static abstract T Invoke(T x, T y);
        static abstract Vector<T> Invoke(Vector<T> x, Vector<T> y);
    }

    private readonly struct AddOperation<T> : IBinaryOperation<T> where T : unmanaged, INumber<T>
    {
        public static T Invoke(T x, T y) => x + y;
        public static Vector<T> Invoke(Vector<T> x, Vector<T> y) => x + y;
    }

    // T.Max/Min and Vector.Max/Min both follow IEEE 754:2019 maximum/minimum (NaN propagates), like torch.
    private readonly struct MaxOperation<T> : IBinaryOperation<T> where T : unmanaged, INumber<T>
    {
        public static T Invoke(T x, T y) => T.Max(x, y);
        public static Vector<T> Invoke(Vector<T> x, Vector<T> y) => Vector.Max(x, y);
    }

    private readonly struct MinOperation<T> : IBinaryOperation<T> where T : unmanaged, INumber<T>
    {
        public static T Invoke(T x, T y) => T.Min(x, y);
        public static Vector<T> Invoke(Vector<T> x, Vector<T> y) => Vector.Min(x, y);
    }
}
