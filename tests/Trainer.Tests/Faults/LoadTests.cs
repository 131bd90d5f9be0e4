using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Trainer.Tests.Faults;

/// <summary>
/// Eight ranks on this machine (one torch thread each) for many steps, with a restart in the middle: the run
/// completes, and every process's resident memory stays flat after warm-up, across steps and across the restart.
/// </summary>
[Collection("Faults")]
public sealed partial class LoadTests(ITestOutputHelper log)
{
    private const int WorldSize = 8;
    private const int Epochs = 8;
    private const int BatchesPerEpoch = 10;

    /// <summary>Generous: allocator and GC noise is a few MB; a per-step leak of the kind TorchSharp makes easy is hundreds.</summary>
    private const double MaxGrowthMb = 48;

    [Fact]
    public async Task Eight_ranks_train_many_steps_through_a_restart_with_flat_memory()
    {
        using var output = new TempDirectory();
        // Two images per batch: eight ranks share two cores, and it is the number of steps that matters here.
        var args = TrainerRanks.TinyRun(output.Path, trainImages: WorldSize * 2 * BatchesPerEpoch, epochs: Epochs, "--bs", "2", "--checkpoint-every", "5");
        using var run = TrainerRanks.Start(WorldSize, args);
        using var stop = new CancellationTokenSource();
        var samples = new List<Sample>();
        var sampler = Task.Run(() => SampleAsync(run, samples, stop.Token));

        await run[0].WaitForLineAsync($"epoch {Epochs / 2}/{Epochs} batch {BatchesPerEpoch}/{BatchesPerEpoch}", TimeSpan.FromMinutes(4));
        Process.GetProcessById(await run[3].WorkerPidAsync(0, TimeSpan.Zero)).Kill();
        var exitCodes = await run.WaitAsync(TimeSpan.FromMinutes(5));
        await stop.CancelAsync();
        await sampler;

        Assert.True(exitCodes.All(code => code == 0), run.ToString());
        Assert.Contains("restarting every rank from the last checkpoint (restart 1 of at most 3)", run[0].Output);
        var steps = run[0].Lines.Count(l => StepLine().IsMatch(l.Line));
        log.WriteLine($"{WorldSize} ranks, {steps} steps logged by rank 0 (schedule: {Epochs * BatchesPerEpoch}), {samples.Count} memory samples, {run.Clock.Elapsed.TotalSeconds:0} s");

        // Warm-up: a worker's first two epochs in its round, validation included (rank 0 prints an epoch's row when it ends);
        // memory grows there while allocator arenas, thread pools and caches fill, then stays flat.
        var epochEnds = run[0].Lines.Where(l => EpochRow().IsMatch(l.Line)).Select(l => l.At).ToArray();
        var restartAt = run[0].Lines.First(l => l.Line.Contains("round 1: worker pid")).At;
        var warmedUp = new[] { epochEnds[1], epochEnds.Where(t => t > restartAt).ElementAt(1) };
        var failures = new List<string>();
        foreach (var worker in samples.Where(s => s.Kind == "worker").GroupBy(s => (s.Rank, s.Round)))
        {
            var (rank, round) = worker.Key;
            var steady = worker.Where(s => s.At > warmedUp[round]).OrderBy(s => s.At).ToArray();
            if (steady.Length < 8) continue; // the killed worker (it died soon after warm-up)
            var growth = Mb(steady.TakeLast(4).Average(s => s.RssBytes) - steady.Take(4).Average(s => s.RssBytes));
            log.WriteLine($"rank {rank} worker, round {round}: {Mb(steady[0].RssBytes):0} MB after warm-up, growth {growth:+0.0;-0.0} MB over {(steady[^1].At - steady[0].At).TotalSeconds:0} s ({steady.Length} samples)");
            if (growth > MaxGrowthMb) failures.Add($"rank {rank} worker of round {round} grew {growth:0.0} MB");
        }
        foreach (var agent in samples.Where(s => s.Kind == "agent").GroupBy(s => s.Rank))
        {
            var early = agent.Where(s => s.At > warmedUp[0] && s.At < restartAt).ToArray();
            var late = agent.Where(s => s.At > warmedUp[1]).ToArray();
            if (early.Length == 0 || late.Length == 0) continue;
            var growth = Mb(late.Average(s => s.RssBytes) - early.Average(s => s.RssBytes));
            log.WriteLine($"rank {agent.Key} agent: {Mb(early.Average(s => s.RssBytes)):0} MB before the restart, growth {growth:+0.0;-0.0} MB after it");
            if (growth > MaxGrowthMb / 2) failures.Add($"rank {agent.Key} agent grew {growth:0.0} MB across the restart");
        }
        Assert.True(samples.Count(s => s.Kind == "worker" && s.At > warmedUp[1]) > 0, "no memory samples after the restart");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static async Task SampleAsync(TrainerRanks run, List<Sample> samples, CancellationToken stop)
    {
        var workers = new Dictionary<(int Rank, int Round), int>();
        while (!stop.IsCancellationRequested)
        {
            foreach (var rank in run.Ranks)
            {
                foreach (var (at, line) in rank.Lines)
                {
                    var match = TrainerRanks.WorkerStarted().Match(line);
                    if (match.Success)
                        workers[(rank.Rank, int.Parse(match.Groups[1].Value))] = int.Parse(match.Groups[2].Value);
                }
                if (Rss(rank.Pid) is { } agentRss)
                    samples.Add(new Sample("agent", rank.Rank, -1, run.Clock.Elapsed, agentRss));
            }
            foreach (var ((rank, round), pid) in workers)
                if (Rss(pid) is { } rss)
                    samples.Add(new Sample("worker", rank, round, run.Clock.Elapsed, rss));
            try
            {
                await Task.Delay(250, stop);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>VmRSS from /proc/pid/status; null once the process is gone.</summary>
    private static long? Rss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static double Mb(double bytes) => bytes / (1024 * 1024);

    private sealed record Sample(string Kind, int Rank, int Round, TimeSpan At, long RssBytes);

    [GeneratedRegex(@"^epoch \d+/\d+ batch \d+/\d+ loss")]
    private static partial Regex StepLine();

    [GeneratedRegex(@"^\d+\s+\d+\.\d{6}\s+\d+\.\d{6}")]
    private static partial Regex EpochRow();
}
