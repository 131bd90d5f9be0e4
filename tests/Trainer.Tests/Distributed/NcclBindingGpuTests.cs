using System.Runtime.InteropServices;
using Trainer.Distributed.Nccl;
using Cuda = Trainer.Interop.Cuda;
using NcclApi = Trainer.Interop.Nccl;

namespace Trainer.Tests.Distributed;

/// <summary>
/// The raw NCCL bindings on real device memory, one rank per visible GPU (up to 4), ranks as threads. A wrong
/// enum value, a unique id passed by reference, or a wrong signature shows up here as an error or wrong numbers.
/// </summary>
[Collection("Distributed")]
public class NcclBindingGpuTests
{
    [GpuRuntimeFact]
    public void AllReduce_Broadcast_and_AllGather_through_the_bindings_give_the_expected_numbers()
    {
        NcclException.CheckCuda(Cuda.GetDeviceCount(out var devices), "cudaGetDeviceCount");
        var worldSize = Math.Min(devices, 4);
        NcclException.Check(NcclApi.GetVersion(out var version), "ncclGetVersion");
        Assert.True(version >= 21000, $"NCCL {version} lacks ncclAvg (needs 2.10+)");
        NcclException.Check(NcclApi.GetUniqueId(out var id), "ncclGetUniqueId");

        const int count = 1 << 20;
        var results = new (float[] Sum, long[] Max, double[] Avg, float[] Broadcast, float[] Gathered)[worldSize];
        var errors = new Exception?[worldSize];
        var threads = Enumerable.Range(0, worldSize).Select(rank => new Thread(() =>
        {
            try
            {
                results[rank] = RunRank(rank, worldSize, id, count);
            }
            catch (Exception e)
            {
                errors[rank] = e;
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(2)), "an NCCL rank hung");
        Assert.All(errors, Assert.Null);

        var n = worldSize;
        for (var rank = 0; rank < n; rank++)
        {
            var (sum, max, avg, broadcast, gathered) = results[rank];
            Assert.All(sum, v => Assert.Equal(n * (n + 1) / 2f, v));
            Assert.All(max, v => Assert.Equal((long)n << 40, v));
            Assert.All(avg, v => Assert.Equal((n + 1) / 2.0, v));
            Assert.All(broadcast, v => Assert.Equal(n, v)); // root n-1 holds n
            Assert.Equal(Enumerable.Range(0, n).SelectMany(r => Enumerable.Repeat(r + 1f, count)), gathered);
        }
    }

    private static unsafe (float[], long[], double[], float[], float[]) RunRank(int rank, int worldSize, NcclUniqueId id, int count)
    {
        NcclException.CheckCuda(Cuda.SetDevice(rank), "cudaSetDevice");
        NcclException.Check(NcclApi.CommInitRank(out var communicator, worldSize, id, rank), "ncclCommInitRank");
        using (communicator)
        {
            var sum = Run(Enumerable.Repeat(rank + 1f, count).ToArray(), (p, c) => NcclApi.AllReduce(p, p, c, NcclDataType.Float32, NcclRedOp.Sum, communicator, 0));
            var max = Run(Enumerable.Repeat((long)(rank + 1) << 40, count).ToArray(), (p, c) => NcclApi.AllReduce(p, p, c, NcclDataType.Int64, NcclRedOp.Max, communicator, 0));
            var avg = Run(Enumerable.Repeat(rank + 1.0, count).ToArray(), (p, c) => NcclApi.AllReduce(p, p, c, NcclDataType.Float64, NcclRedOp.Avg, communicator, 0));
            var broadcast = Run(Enumerable.Repeat(rank + 1f, count).ToArray(), (p, c) => NcclApi.Broadcast(p, p, c, NcclDataType.Float32, worldSize - 1, communicator, 0));
            var gathered = new float[worldSize * count];
            Array.Fill(gathered, rank + 1f, rank * count, count);
            gathered = Run(gathered, (p, c) => NcclApi.AllGather((float*)p + rank * count, p, (nuint)count, NcclDataType.Float32, communicator, 0));
            NcclException.Check(NcclApi.CommGetAsyncError(communicator, out var asyncError), "ncclCommGetAsyncError");
            Assert.Equal(NcclResult.Success, asyncError);
            return (sum, max, avg, broadcast, gathered);
        }
    }

    private unsafe delegate NcclResult Collective(void* data, nuint count);

    private static unsafe T[] Run<T>(T[] host, Collective collective) where T : unmanaged
    {
        var bytes = (nuint)(host.Length * sizeof(T));
        NcclException.CheckCuda(CudaTestMemory.Malloc(out var device, bytes), "cudaMalloc");
        try
        {
            fixed (T* p = host)
            {
                NcclException.CheckCuda(CudaTestMemory.Memcpy((void*)device, p, bytes, CudaTestMemory.HostToDevice), "cudaMemcpy");
                NcclException.Check(collective((void*)device, (nuint)host.Length), "collective");
                NcclException.CheckCuda(CudaTestMemory.DeviceSynchronize(), "cudaDeviceSynchronize");
                NcclException.CheckCuda(CudaTestMemory.Memcpy(p, (void*)device, bytes, CudaTestMemory.DeviceToHost), "cudaMemcpy");
            }
            return host;
        }
        finally
        {
            CudaTestMemory.Free(device);
        }
    }
}
