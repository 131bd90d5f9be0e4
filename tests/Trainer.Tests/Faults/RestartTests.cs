using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Trainer.Training;
using Xunit.Abstractions;

namespace Trainer.Tests.Faults;

/// <summary>
/// torchrun's restarts: after a failure every agent starts the next round (TORCHELASTIC_RESTART_COUNT + 1, a new
/// rendezvous, --resume) and the run finishes as if nothing had happened, repeating only the steps since the last checkpoint.
/// </summary>
[Collection("Faults")]
public sealed partial class RestartTests(ITestOutputHelper log)
{
    private const int Epochs = 2;
    private const int BatchesPerEpoch = 8;
    private const int CheckpointEvery = 3;

    [Fact]
    public async Task A_worker_killed_mid_epoch_is_restarted_with_the_group_and_the_run_ends_with_the_steps_and_weights_of_an_uninterrupted_run()
    {
        using var straightOutput = new TempDirectory();
        using var interruptedOutput = new TempDirectory();
        using (var straight = TrainerRanks.Start(2, Args(straightOutput.Path)))
            Assert.All(await straight.WaitAsync(RankLossTests.Patience), code => Assert.Equal(0, code));

        using var run = TrainerRanks.Start(2, Args(interruptedOutput.Path));
        var worker = await run[1].WorkerPidAsync(0, RankLossTests.Patience);
        await run[0].WaitForLineAsync($"epoch 2/{Epochs} batch 5/{BatchesPerEpoch}", RankLossTests.Patience); // step 13: one past a checkpoint
        var killedAt = run.Clock.Elapsed;
        Assert.True(Directory.Exists($"/proc/{worker}"), $"rank 1's worker (pid {worker}) was gone before the kill\n{run}");
        Process.GetProcessById(worker).Kill();
        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.True(exitCodes.All(code => code == 0), run.ToString());
        var (resumedAt, resumed) = await run[0].WaitForLineAsync("resumed from", TimeSpan.Zero);
        var stepsAfterRestart = run[0].Lines.Where(l => l.At > resumedAt && StepLine().IsMatch(l.Line)).ToArray();
        var firstStepAgain = stepsAfterRestart[0].At;
        log.WriteLine($"worker killed at {killedAt.TotalSeconds:0.0} s; the group resumed ({resumed}) {(resumedAt - killedAt).TotalSeconds:0.00} s later " +
                      $"and took its first step {(firstStepAgain - killedAt).TotalSeconds:0.00} s after the kill");
        foreach (var rank in run.Ranks)
        {
            Assert.Contains("rank 1's worker exited with exit code 137 (killed by SIGKILL); restarting every rank from the last checkpoint (restart 1 of at most 3)", rank.Output);
            Assert.Contains("round 1: worker pid", rank.Output);
        }

        // Every step of the schedule is taken; the steps since the last checkpoint are taken twice, nothing more.
        var straightInfo = Checkpoint.ReadInfo(Path.Combine(straightOutput.Path, Checkpoint.FileName));
        var info = Checkpoint.ReadInfo(Path.Combine(interruptedOutput.Path, Checkpoint.FileName));
        Assert.Equal(Epochs * BatchesPerEpoch, straightInfo.Step);
        Assert.Equal(straightInfo.Step, info.Step);
        var taken = run[0].Lines.Count(l => StepLine().IsMatch(l.Line));
        var repeated = taken - Epochs * BatchesPerEpoch;
        log.WriteLine($"{taken} steps taken for a schedule of {Epochs * BatchesPerEpoch}: {repeated} repeated (checkpoint every {CheckpointEvery})");
        Assert.InRange(repeated, 0, CheckpointEvery);
        Assert.Equal(Epochs * BatchesPerEpoch - stepsAfterRestart.Length, ResumedStep(resumed));

        // summary.json covers the whole run: the epoch finished before the restart too, with the uninterrupted run's numbers.
        var straightHistory = TrainingSummary.Read(Path.Combine(straightOutput.Path, TrainingSummary.FileName)).History;
        var history = TrainingSummary.Read(Path.Combine(interruptedOutput.Path, TrainingSummary.FileName)).History;
        Assert.Equal([0, 1], history.Select(e => e.Epoch));
        Assert.Equal(straightHistory.Select(e => (e.ValidLoss, e.Accuracy)), history.Select(e => (e.ValidLoss, e.Accuracy)));

        // Bit-exact: weights, buffers, optimizer state and RNG are the uninterrupted run's.
        Assert.Equal(straightInfo.SmoothMovingAverage, info.SmoothMovingAverage);
        Assert.True(State(Path.Combine(straightOutput.Path, Checkpoint.FileName)).SequenceEqual(State(Path.Combine(interruptedOutput.Path, Checkpoint.FileName))),
            "the restarted run ended with other weights or optimizer state than the uninterrupted one");
    }

    [Fact]
    public async Task A_failure_in_every_round_gives_up_after_max_restarts_on_every_rank()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 128, more: ["--max-restarts", "1"]),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = "point=forward,rank=1,at=2,round=any" });

        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.All(exitCodes, code => Assert.Equal(1, code));
        foreach (var rank in run.Ranks)
        {
            Assert.Contains("round 0 failed: rank 1's worker exited with exit code 137 (killed by SIGKILL); restarting every rank from the last checkpoint (restart 1 of at most 1)", rank.Output);
            Assert.Contains("round 1 failed: rank 1's worker exited with exit code 137 (killed by SIGKILL); giving up after 1 restart(s) (--max-restarts)", rank.Output);
            Assert.DoesNotContain("round 2:", rank.Output);
        }
    }

    [Fact]
    public async Task Interrupting_one_agent_stops_every_rank_with_exit_code_130_and_no_restart()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 384, epochs: 3));
        await run[0].WaitForLineAsync("epoch 1/3 batch 2/", RankLossTests.Patience);

        var signalledAt = run.Clock.Elapsed;
        Trainer.Runtime.Posix.Signal(run[1].Pid, Trainer.Runtime.Posix.SigTerm);
        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        var lastExit = run.Ranks.Max(r => r.ExitedAt!.Value) - signalledAt;
        log.WriteLine($"SIGTERM to rank 1's agent; every rank had exited {lastExit.TotalSeconds:0.00} s later");
        Assert.All(exitCodes, code => Assert.Equal(130, code));
        foreach (var rank in run.Ranks)
        {
            Assert.Contains("rank 1's worker was interrupted (Ctrl+C or SIGTERM); not restarting", rank.Output);
            Assert.DoesNotContain("round 1:", rank.Output);
        }
        Assert.True(lastExit < RankLossTests.Prompt, $"the ranks took {lastExit} to stop\n{run}");
    }

    private static List<string> Args(string output) =>
        TrainerRanks.TinyRun(output, trainImages: 2 * 16 * BatchesPerEpoch, epochs: Epochs, "--checkpoint-every", $"{CheckpointEvery}");

    /// <summary>The checkpoint's training state: everything after its metadata (which holds the time it was saved).</summary>
    internal static byte[] State(string path)
    {
        Checkpoint.ReadInfo(path); // verifies the checksum
        var bytes = File.ReadAllBytes(path);
        using var reader = new BinaryReader(new MemoryStream(bytes, 52, bytes.Length - 52), Encoding.UTF8);
        reader.ReadString();
        return bytes[(52 + (int)reader.BaseStream.Position)..];
    }

    private static int ResumedStep(string line) => int.Parse(ResumedLine().Match(line).Groups[1].Value);

    [GeneratedRegex(@"^epoch \d+/\d+ batch \d+/\d+ loss")]
    private static partial Regex StepLine();

    [GeneratedRegex(@"\(step (\d+)\)")]
    private static partial Regex ResumedLine();
}
