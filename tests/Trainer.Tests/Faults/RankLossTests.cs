using System.Diagnostics;
using Xunit.Abstractions;

namespace Trainer.Tests.Faults;

/// <summary>
/// A rank killed at any point of a real run (SIGKILL, by TRAINER_FAULT at an exact point or by the test) stops
/// every rank within seconds, with an error naming the lost rank. With --max-restarts 0 the run then ends.
/// </summary>
[Collection("Faults")]
public sealed class RankLossTests(ITestOutputHelper log)
{
    /// <summary>"Within seconds", with room for two loaded cores.</summary>
    internal static readonly TimeSpan Prompt = TimeSpan.FromSeconds(20);

    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(150);

    [Theory]
    [InlineData("rendezvous", 1, 1)] // the others wait for every rank to arrive
    [InlineData("data", 0, 1)] // rank 0, whose agent serves the store, dies before telling the others which data to load
    [InlineData("forward", 1, 5)]
    [InlineData("allreduce", 0, 5)] // rank 0 itself, between backward and the gradient all-reduce
    [InlineData("validation", 1, 1)] // before validation's all-reduce
    [InlineData("checkpoint", 0, 1)] // rank 0 halfway through writing its first checkpoint
    public async Task A_rank_killed_at_any_point_stops_every_rank_within_seconds_naming_it(string point, int victim, int at)
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 128, more: ["--max-restarts", "0"]),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = $"point={point},rank={victim},at={at}" });

        var (killedAt, _) = await run[victim].WaitForLineAsync("fault injection", Patience);
        var exitCodes = await run.WaitAsync(Patience);

        var lastExit = run.Ranks.Max(r => r.ExitedAt!.Value) - killedAt;
        log.WriteLine($"{point}: rank {victim} killed at {killedAt.TotalSeconds:0.0} s; every rank had exited {lastExit.TotalSeconds:0.00} s later");
        Assert.All(exitCodes, code => Assert.Equal(1, code));
        foreach (var rank in run.Ranks)
            Assert.Contains($"rank {victim}'s worker exited with exit code 137 (killed by SIGKILL); giving up after 0 restart(s)", rank.Output);
        Assert.True(lastExit < Prompt, $"the ranks took {lastExit} to stop after the kill\n{run}");
        if (point == "checkpoint")
            Assert.False(File.Exists(Path.Combine(output.Path, "checkpoint.ckpt")), "a half-written checkpoint was published");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(0)] // its process serves the store
    public async Task An_agent_killed_mid_run_ends_the_run_on_every_rank_within_seconds_and_takes_its_worker_along(int victim)
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(3, TrainerRanks.TinyRun(output.Path, trainImages: 384, epochs: 3));
        var worker = await run[victim].WorkerPidAsync(0, Patience);
        await run[0].WaitForLineAsync("epoch 1/3 batch 2/8", Patience);

        var killedAt = run.Clock.Elapsed;
        run[victim].KillAgent();
        var survivors = run.Ranks.Where(r => r.Rank != victim).ToArray();
        var exitCodes = await Task.WhenAll(survivors.Select(r => r.Exited)).WaitAsync(Patience);

        var lastExit = survivors.Max(r => r.ExitedAt!.Value) - killedAt;
        log.WriteLine($"agent of rank {victim} killed at {killedAt.TotalSeconds:0.0} s; the other ranks had exited {lastExit.TotalSeconds:0.00} s later");
        Assert.All(exitCodes, code => Assert.Equal(1, code));
        var expected = victim == 0 ? "lost rank 0's agent, which serves the store" : $"rank {victim}'s agent was lost";
        foreach (var rank in survivors)
            Assert.True(rank.Output.Contains(expected), $"rank {rank.Rank} does not say \"{expected}\"\n{run}");
        Assert.True(lastExit < Prompt, $"the ranks took {lastExit} to stop after the kill\n{run}");
        Assert.True(await GoneWithinAsync(worker, Prompt), $"rank {victim}'s worker (pid {worker}) outlived its agent");
    }

    private static async Task<bool> GoneWithinAsync(int pid, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (!Directory.Exists($"/proc/{pid}") || File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] == "Z")
                return true;
            await Task.Delay(100);
        }
        return false;
    }
}
