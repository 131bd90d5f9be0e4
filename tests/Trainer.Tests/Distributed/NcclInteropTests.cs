using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Trainer.Distributed;
using Trainer.Distributed.Nccl;
using NcclApi = Trainer.Interop.Nccl;

namespace Trainer.Tests.Distributed;

/// <summary>The NCCL bindings must match nccl.h exactly; these checks need no GPU.</summary>
public class NcclInteropTests
{
    [Fact]
    public void The_unique_id_is_128_bytes_like_ncclUniqueId()
    {
        Assert.Equal(128, Marshal.SizeOf<NcclUniqueId>());
        Assert.Equal(128, Unsafe.SizeOf<NcclUniqueId>());
        var bytes = Enumerable.Range(0, 128).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(bytes, NcclUniqueId.FromBytes(bytes).ToArray());
        Assert.Contains("expected 128", Assert.Throws<DistributedException>(() => NcclUniqueId.FromBytes(new byte[127])).Message);
    }

    [Fact]
    public void Enum_values_match_nccl_h()
    {
        Assert.Equal(7, (int)NcclDataType.Float32);
        Assert.Equal(8, (int)NcclDataType.Float64);
        Assert.Equal(4, (int)NcclDataType.Int64);
        Assert.Equal(2, (int)NcclDataType.Int32);
        Assert.Equal(6, (int)NcclDataType.Float16);
        Assert.Equal(9, (int)NcclDataType.Bfloat16);
        Assert.Equal(0, (int)NcclDataType.Int8);
        Assert.Equal(1, (int)NcclDataType.Uint8);
        Assert.Equal([0, 1, 2, 3, 4], new[] { NcclRedOp.Sum, NcclRedOp.Prod, NcclRedOp.Max, NcclRedOp.Min, NcclRedOp.Avg }.Select(o => (int)o));
        Assert.Equal(0, (int)NcclResult.Success);
        Assert.Equal(7, (int)NcclResult.InProgress);
        Assert.Equal(8, (int)NcclResult.Timeout);
    }

    [Fact]
    public void CommInitRank_passes_the_unique_id_by_value_to_the_native_entry_point()
    {
        var declared = typeof(NcclApi).GetMethod(nameof(NcclApi.CommInitRank))!;
        var parameters = declared.GetParameters();
        Assert.True(parameters[0].IsOut && parameters[0].ParameterType.GetElementType() == typeof(NcclCommunicatorHandle));
        Assert.Equal(typeof(NcclUniqueId), parameters[2].ParameterType); // not ref, not a pointer

        // The generated P/Invoke stub is what the runtime marshals: it must take the 128-byte struct by value as well.
        var stub = typeof(NcclApi).GetMethods(BindingFlags.NonPublic | BindingFlags.Static)
            .Single(m => m.GetCustomAttribute<DllImportAttribute>() is { EntryPoint: "ncclCommInitRank" });
        Assert.Equal("libnccl.so.2", stub.GetCustomAttribute<DllImportAttribute>()!.Value);
        Assert.Equal(
            [typeof(IntPtr).MakePointerType(), typeof(int), typeof(NcclUniqueId), typeof(int)],
            stub.GetParameters().Select(p => p.ParameterType));
    }

    [Fact]
    public void Every_binding_targets_the_versioned_libraries_and_existing_symbols()
    {
        foreach (var (type, library) in new[] { (typeof(NcclApi), "libnccl.so.2"), (typeof(Trainer.Interop.Cuda), "libcudart.so.12"), (typeof(CudaTestMemory), "libcudart.so.12") })
        {
            var stubs = type.GetMethods(BindingFlags.NonPublic | BindingFlags.Static)
                .Select(m => m.GetCustomAttribute<DllImportAttribute>()).OfType<DllImportAttribute>().ToList();
            Assert.NotEmpty(stubs);
            Assert.All(stubs, s => Assert.Equal(library, s.Value));
            Assert.All(stubs, s => Assert.StartsWith(type == typeof(NcclApi) ? "nccl" : "cuda", s.EntryPoint));
        }
    }

    [Fact]
    public async Task Without_CUDA_or_libnccl_Nccl_fails_naming_what_is_missing_and_Auto_falls_back_to_Cpu()
    {
        var problem = NcclAvailability.Probe();
        if (problem is null)
            return; // a machine with CUDA and NCCL: GpuCollectiveTests covers it
        if (!TorchSharp.torch.cuda.is_available())
            Assert.Contains("CUDA is not available", problem);
        if (!NativeLibrary.TryLoad("libnccl.so.2", out var nccl))
            Assert.Contains("libnccl.so.2 cannot be loaded", problem);
        else
            NativeLibrary.Free(nccl);
        Assert.Contains("Backend.Cpu", problem);

        var store = new InMemoryStore();
        var options = new ProcessGroupOptions { Backend = Backend.Nccl, Timeout = TimeSpan.FromSeconds(10) };
        var error = await Assert.ThrowsAsync<DistributedException>(() => ProcessGroup.CreateAsync(options, store, 0, 1, IPAddress.Loopback));
        Assert.Equal(problem, error.Message);

        Assert.Equal(Backend.Cpu, ProcessGroup.ResolveBackend(Backend.Auto));
        using var group = await ProcessGroup.CreateAsync(options with { Backend = Backend.Auto }, store, 0, 1, IPAddress.Loopback);
        Assert.Equal(Backend.Cpu, group.Backend);
    }
}
