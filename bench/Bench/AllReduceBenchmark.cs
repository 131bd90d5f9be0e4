using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using Trainer.Distributed;

namespace Bench;

/// <summary>
/// `Bench allreduce`: float32 all-reduces of each size on the CPU ring, one torch thread per rank, timed like
/// pytorch_peer.py's allreduce mode; rank 0 prints one JSON line per size as soon as it is measured.
/// </summary>
internal static class AllReduceBenchmark
{
    private static readonly Option<string> Sizes = new("--sizes") { Description = "Tensor sizes in bytes, comma-separated.", DefaultValueFactory = _ => "1024,16384,262144,1048576,4194304,16777216,67108864" };
    private static readonly Option<long> BudgetBytes = new("--budget-bytes") { Description = "Bytes to all-reduce per size (iterations = budget / size, 20..4000).", DefaultValueFactory = _ => 512L << 20 };

    public static Command Create()
    {
        var command = new Command("allreduce", "All-reduce bus bandwidth and latency over the rendezvous from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.");
        command.Options.Add(Sizes);
        command.Options.Add(BudgetBytes);
        command.SetAction(async (parse, _) =>
        {
            long[] sizes;
            try
            {
                sizes = [.. parse.GetValue(Sizes)!.Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture))];
            }
            catch (FormatException)
            {
                Console.Error.WriteLine($"error: --sizes '{parse.GetValue(Sizes)}' is not a comma-separated list of byte counts; e.g. --sizes 1024,1048576.");
                return 2;
            }
            if (sizes.FirstOrDefault(s => s < 4 || s % 4 != 0) is var bad and not 0)
            {
                Console.Error.WriteLine($"error: --sizes {bad}: every size must be a positive multiple of 4 bytes (float32).");
                return 2;
            }
            var budget = parse.GetValue(BudgetBytes);
            torch.set_num_threads(1);
            return await BenchWorld.RunAsync("allreduce", world =>
            {
                Run(world.Group, sizes, budget);
                return 0;
            });
        });
        return command;
    }

    public static int Iterations(long bytes, long budget) => (int)Math.Clamp(budget / bytes, 20, 4000);

    private static void Run(ProcessGroup group, long[] sizes, long budget)
    {
        var factor = 2.0 * (group.WorldSize - 1) / group.WorldSize;
        foreach (var bytes in sizes)
        {
            using var tensor = torch.ones(bytes / sizeof(float));
            var iterations = Iterations(bytes, budget);
            for (var i = 0; i < Math.Max(5, iterations / 10); i++)
                group.AllReduce(tensor);
            group.Barrier();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < iterations; i++)
                group.AllReduce(tensor);
            var seconds = clock.Elapsed.TotalSeconds / iterations;
            group.Barrier();
            if (group.Rank == 0)
                Json.WriteLine(new { mode = "allreduce", world = group.WorldSize, bytes, iterations, seconds, bus_bytes_per_second = bytes * factor / seconds });
        }
    }
}
