using System.Diagnostics;
using System.Globalization;
using System.Net;
using TorchSharp;
using Trainer.Distributed;

namespace Bench;

/// <summary>
/// Benchmark ranks, one per process. `allreduce RANK WORLD_SIZE STORE_DIR [SIZES]` times float32 all-reduces of
/// each size (bytes) and rank 0 prints one line per size: bytes, seconds per all-reduce.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        if (args.Length < 4 || args[0] != "allreduce")
        {
            Console.Error.WriteLine("usage: Bench allreduce RANK WORLD_SIZE STORE_DIR [BYTES,BYTES,...]");
            return 2;
        }
        var rank = int.Parse(args[1], CultureInfo.InvariantCulture);
        var worldSize = int.Parse(args[2], CultureInfo.InvariantCulture);
        var sizes = (args.Length > 4 ? args[4] : "1024,16384,262144,1048576,4194304,16777216,67108864")
            .Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        torch.set_num_threads(1);

        await using var store = new FileStore(args[3]);
        var options = new ProcessGroupOptions { Backend = Backend.Cpu, Timeout = TimeSpan.FromMinutes(2), KeyPrefix = "bench" };
        using var group = await ProcessGroup.CreateAsync(options, store, rank, worldSize, IPAddress.Loopback);

        try
        {
            Run(group, rank, sizes);
        }
        catch (DistributedException e)
        {
            Console.Error.WriteLine($"rank {rank}: {e.GetType().Name}: {e.Message}");
            return 1;
        }
        return 0;
    }

    private static void Run(ProcessGroup group, int rank, long[] sizes)
    {
        foreach (var bytes in sizes)
        {
            using var tensor = torch.ones(bytes / sizeof(float));
            var iterations = (int)Math.Clamp(512L * 1024 * 1024 / bytes, 20, 4000);
            for (var i = 0; i < Math.Max(5, iterations / 10); i++)
                group.AllReduce(tensor);
            group.Barrier();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++)
                group.AllReduce(tensor);
            var seconds = clock.Elapsed.TotalSeconds / iterations;
            group.Barrier();
            if (rank == 0)
                Console.WriteLine(FormattableString.Invariant($"{bytes} {seconds:E6}"));
        }
    }
}
