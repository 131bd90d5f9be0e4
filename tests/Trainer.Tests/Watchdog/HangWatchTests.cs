using System.Diagnostics;
using Trainer.Distributed;
using Trainer.Watchdog;

namespace Trainer.Tests.Watchdog;

/// <summary>When a worker counts as hung: the rules, on progress snapshots of chosen ages.</summary>
public sealed class HangWatchTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private static readonly long Now = 1_000_000 * Stopwatch.Frequency;

    private static long Ago(double seconds) => Now - (long)(seconds * Stopwatch.Frequency);

    private static ProgressSnapshot Snapshot(TrainingPhase phase, double heartbeatAgo = 0.5, double progressAgo = 0, long steps = 10,
        double slowestStep = 0.3, bool inCollective = false) =>
        new(4242, Ago(heartbeatAgo), Ago(progressAgo), phase, 1, 37, steps, (long)(slowestStep * Stopwatch.Frequency), inCollective ? 812 : 811, 811,
        [
            new CollectiveRecord(811, CollectiveKind.AllReduce, 1 << 20, Ago(progressAgo + 1), Ago(progressAgo + 0.5), CollectiveState.Finished),
            .. inCollective ? [new CollectiveRecord(812, CollectiveKind.AllReduce, 1 << 20, Ago(progressAgo), 0, CollectiveState.Running)] : Array.Empty<CollectiveRecord>(),
        ]);

    [Theory]
    [InlineData("Forward")]
    [InlineData("Validation")]
    [InlineData("Checkpoint")]
    [InlineData("Starting")]
    public void A_frozen_process_is_hung_in_any_phase(string name)
    {
        var phase = Enum.Parse<TrainingPhase>(name);
        var verdict = HangWatch.Judge(Snapshot(phase, heartbeatAgo: 61, progressAgo: 61), Now, Timeout, 'T');
        Assert.NotNull(verdict);
        Assert.Contains("its process has been frozen for 61 s (stopped by a signal: state T)", verdict);
        Assert.Contains(phase.Describe(), verdict);
    }

    [Fact]
    public void A_frozen_process_is_not_hung_before_the_timeout()
    {
        Assert.Null(HangWatch.Judge(Snapshot(TrainingPhase.Forward, heartbeatAgo: 59, progressAgo: 59), Now, Timeout, 'T'));
    }

    [Theory]
    [InlineData("Data", "waiting for the data loader of step 38 (epoch 1)")]
    [InlineData("Forward", "the forward/backward pass of step 38")]
    [InlineData("Optimizer", "the optimizer step of step 38")]
    public void A_living_process_without_progress_in_a_training_step_is_hung(string name, string where)
    {
        var phase = Enum.Parse<TrainingPhase>(name);
        var verdict = HangWatch.Judge(Snapshot(phase, progressAgo: 61), Now, Timeout, 'S');
        Assert.NotNull(verdict);
        Assert.StartsWith("no progress for 61 s (--hang-timeout 60 s; its slowest step took 0.3 s)", verdict);
        Assert.Contains(where, verdict);
        Assert.Contains("last collective #811 all-reduce of 1 MiB, finished", verdict);
    }

    [Theory]
    [InlineData("Validation")]
    [InlineData("Checkpoint")]
    [InlineData("Starting")]
    [InlineData("Finishing")]
    public void Download_validation_and_checkpoints_may_take_long_while_the_process_lives(string name)
    {
        Assert.Null(HangWatch.Judge(Snapshot(Enum.Parse<TrainingPhase>(name), progressAgo: 3600), Now, Timeout, 'R'));
    }

    [Fact]
    public void The_first_step_is_warm_up_and_may_take_long()
    {
        Assert.Null(HangWatch.Judge(Snapshot(TrainingPhase.Forward, progressAgo: 600, steps: 0), Now, Timeout, 'R'));
    }

    [Fact]
    public void Waiting_inside_a_collective_is_for_the_peer_to_be_judged()
    {
        Assert.Null(HangWatch.Judge(Snapshot(TrainingPhase.AllReduce, progressAgo: 600, inCollective: true), Now, Timeout, 'S'));
    }

    [Fact]
    public void The_limit_grows_to_three_times_the_slowest_step_seen()
    {
        var slow = Snapshot(TrainingPhase.Forward, progressAgo: 100, slowestStep: 40);
        Assert.Null(HangWatch.Judge(slow, Now, Timeout, 'R'));
        Assert.NotNull(HangWatch.Judge(slow with { Progress = Ago(121) }, Now, Timeout, 'R'));
    }

    [Fact]
    public void The_process_state_of_this_process_is_read_from_proc()
    {
        Assert.Contains(HangWatch.ProcessState(Environment.ProcessId)!.Value, "RS");
        Assert.Null(HangWatch.ProcessState(int.MaxValue));
    }
}
