using System.Diagnostics;

namespace Trainer.Tests.Distributed;

/// <summary>
/// Ranks as separate processes (bench/Bench's all-reduce loop, joined through the torchrun contract like the
/// Trainer), one of them killed with SIGKILL mid-run.
/// </summary>
[Collection("Distributed")]
public class ProcessFaultTests
{
    [Fact]
    public async Task The_surviving_processes_of_a_killed_rank_fail_promptly_naming_it()
    {
        const int worldSize = 3;
        var port = FreeTcpPort.Next();
        var sizes = string.Join(",", Enumerable.Repeat(16L << 20, 500)); // minutes of work: the kill comes first
        var ranks = Enumerable.Range(0, worldSize).Select(rank => StartRank(rank, worldSize, port, sizes)).ToArray();
        try
        {
            // Rank 0 prints a line per finished size: once one is out, every rank is mid-run.
            Assert.NotNull(await ranks[0].StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(90)));

            var clock = Stopwatch.StartNew();
            ranks[2].Kill();
            for (var rank = 0; rank < 2; rank++)
            {
                using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await ranks[rank].WaitForExitAsync(limit.Token);
                var error = await ranks[rank].StandardError.ReadToEndAsync();
                Assert.Equal(1, ranks[rank].ExitCode);
                Assert.Contains($"allreduce: rank {rank}: Rank 2 was lost", error);
            }
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the survivors took {clock.Elapsed}");
        }
        finally
        {
            foreach (var process in ranks)
            {
                if (!process.HasExited)
                    process.Kill();
                process.Dispose();
            }
        }
    }

    private static Process StartRank(int rank, int worldSize, int port, string sizes)
    {
        // The test's own deps file lists Bench and TorchSharp's native assets, so the rank runs from this folder.
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment =
            {
                ["RANK"] = rank.ToString(),
                ["WORLD_SIZE"] = worldSize.ToString(),
                ["MASTER_ADDR"] = "127.0.0.1",
                ["MASTER_PORT"] = port.ToString(),
                ["TORCHELASTIC_RUN_ID"] = $"kill-test-{port}",
            },
        };
        foreach (var argument in new[]
                 {
                     "exec", "--runtimeconfig", "Trainer.Tests.runtimeconfig.json", "--depsfile", "Trainer.Tests.deps.json",
                     "Bench.dll", "allreduce", "--sizes", sizes,
                 })
            start.ArgumentList.Add(argument);
        foreach (var inherited in new[] { "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "TORCHELASTIC_RESTART_COUNT", "TRAINER_RUN_SECRET", "TRAINER_BACKEND" })
            start.Environment.Remove(inherited);
        return Process.Start(start)!;
    }
}
