using System.Text.Json;
using Xunit.Abstractions;

namespace Trainer.Tests.Faults;

/// <summary>
/// A hung rank (frozen by SIGSTOP, or one thread blocked forever) in a real run is found within the hang timeout,
/// named with its host and what it was doing, killed, and the group restarts from its last checkpoint; every rank
/// writes its flight record and rank 0 prints the table. A slow but honest step is not a hang.
/// </summary>
[Collection("Faults")]
public sealed class HangTests(ITestOutputHelper log)
{
    private const int HangTimeout = 8;

    [Fact]
    public async Task A_rank_frozen_in_the_forward_pass_is_named_killed_and_the_group_restarts()
    {
        using var output = new TempDirectory();
        var (run, frozenAt) = await RunAsync(3, output.Path, "point=forward,rank=2,at=3,do=stop");
        using (run)
        {
            var hung = AssertRestartedAfterHang(run, victim: 2, frozenAt);
            Assert.Contains("its process has been frozen for", hung);
            Assert.Contains("(stopped by a signal: state T)", hung);
            Assert.Contains("in the forward/backward pass of step 3 (epoch 0)", hung);
            Assert.Contains($"on {Environment.MachineName}) hung", hung);

            // Rank 0 prints one table with every rank and keeps it as JSON; the frozen rank is the one behind.
            Assert.Contains("flight record of round 0", run[0].Output);
            var records = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output.Path, "flight-record-round-0.json"))).RootElement;
            Assert.Equal([0, 1, 2], records.EnumerateArray().Select(r => r.GetProperty("Rank").GetInt32()));
            var issued = records.EnumerateArray().Select(r => r.GetProperty("Issued").GetInt64()).ToArray();
            Assert.True(issued[2] < issued[0] && issued[2] < issued[1], $"issued: {string.Join(", ", issued)}\n{run}");
            Assert.Contains($"rank 2 only #{issued[2]} (the rank furthest behind is where to look)", run[0].Output);
        }
    }

    [Fact]
    public async Task A_rank_frozen_inside_an_all_reduce_is_named_with_the_collective()
    {
        using var output = new TempDirectory();
        // With k = 1 a step issues two buffer broadcasts and one gradient all-reduce after the fit's 64 broadcasts: #79 is step 5's all-reduce.
        var (run, frozenAt) = await RunAsync(2, output.Path, "point=collective,rank=1,at=79,do=stop");
        using (run)
        {
            var hung = AssertRestartedAfterHang(run, victim: 1, frozenAt);
            Assert.Contains("its process has been frozen for", hung);
            Assert.Contains("in the gradient all-reduce of step 5 (epoch 0); last collective #79 all-reduce of 1 MiB, not finished", hung);
            Assert.Contains("#79 ", run[0].Output);
        }
    }

    [Fact]
    public async Task A_data_loader_blocked_forever_is_found_though_the_process_lives()
    {
        using var output = new TempDirectory();
        var (run, frozenAt) = await RunAsync(2, output.Path, "point=loader,rank=1,at=5,do=hang");
        using (run)
        {
            var hung = AssertRestartedAfterHang(run, victim: 1, frozenAt);
            Assert.Contains("no progress for", hung);
            Assert.Contains("in waiting for the data loader of step 5 (epoch 0)", hung);
        }
    }

    [Fact]
    public async Task A_slow_but_honest_step_under_the_timeout_is_not_a_hang()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, Args(output.Path),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = $"point=forward,rank=1,at=4,do=sleep,for={HangTimeout - 3}" });
        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.All(exitCodes, code => Assert.Equal(0, code));
        Assert.Contains("fault injection (TRAINER_FAULT): sleeping", run[1].Output);
        foreach (var rank in run.Ranks)
        {
            Assert.DoesNotContain("hung", rank.Output);
            Assert.DoesNotContain("round 1:", rank.Output);
        }
    }

    private static List<string> Args(string output) =>
        TrainerRanks.TinyRun(output, trainImages: 256, epochs: 2, "--checkpoint-every", "2", "--hang-timeout", $"{HangTimeout}", "--max-restarts", "1");

    private static async Task<(TrainerRanks Run, TimeSpan FrozenAt)> RunAsync(int worldSize, string output, string fault)
    {
        var run = TrainerRanks.Start(worldSize, Args(output), new Dictionary<string, string?> { ["TRAINER_FAULT"] = fault });
        try
        {
            var victim = int.Parse(fault.Split(',').Single(p => p.StartsWith("rank=", StringComparison.Ordinal))[5..]);
            var (frozenAt, _) = await run[victim].WaitForLineAsync("fault injection", RankLossTests.Patience);
            var exitCodes = await run.WaitAsync(RankLossTests.Patience);
            Assert.True(exitCodes.All(code => code == 0), $"exit codes {string.Join(", ", exitCodes)}\n{run}");
            return (run, frozenAt);
        }
        catch
        {
            run.Dispose();
            throw;
        }
    }

    /// <summary>Every rank restarted within the hang timeout and some seconds of the hang, all naming the victim; returns the victim's error line.</summary>
    private string AssertRestartedAfterHang(TrainerRanks run, int victim, TimeSpan frozenAt)
    {
        var (_, hung) = run[victim].Lines.FirstOrDefault(l => l.Line.Contains($"error: rank {victim}: rank {victim}'s worker (pid", StringComparison.Ordinal));
        Assert.True(hung is not null, $"rank {victim}'s agent did not declare its worker hung\n{run}");
        foreach (var rank in run.Ranks)
        {
            Assert.Contains($"round 0 failed: rank {victim}'s worker (pid", rank.Output);
            var (restartedAt, _) = rank.Lines.First(l => l.Line.Contains("round 1: worker pid", StringComparison.Ordinal));
            var after = restartedAt - frozenAt;
            log.WriteLine($"rank {rank.Rank}: restarted {after.TotalSeconds:0.0} s after the hang (--hang-timeout {HangTimeout} s)");
            Assert.True(after < TimeSpan.FromSeconds(HangTimeout) + RankLossTests.Prompt, $"rank {rank.Rank} restarted {after} after the hang\n{run}");
        }
        log.WriteLine(hung);
        return hung;
    }
}
