using System.Diagnostics;
using Trainer.Distributed;
using Trainer.Watchdog;

namespace Trainer.Tests.Watchdog;

/// <summary>The page a worker writes and its agent reads, through two mappings of one file as in the two processes.</summary>
public sealed class ProgressFileTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"progress-test-{Guid.NewGuid():N}");

    [Fact]
    public void Nothing_is_read_before_the_worker_opens_the_file()
    {
        using var agent = ProgressFile.Create(_path);
        Assert.Null(agent.Read());
    }

    [Fact]
    public void The_agent_reads_the_workers_phase_step_and_collectives()
    {
        using var agent = ProgressFile.Create(_path);
        using var worker = ProgressFile.Open(_path);
        worker.StepStarted(epoch: 1, step: 41);
        worker.Issued(7, CollectiveKind.Broadcast, 64);
        worker.Completed(7, succeeded: true);
        worker.Enter(TrainingPhase.AllReduce);
        worker.Issued(8, CollectiveKind.AllReduce, 4 << 20);

        var progress = agent.Read()!;
        Assert.Equal(Environment.ProcessId, progress.Pid);
        Assert.Equal(TrainingPhase.AllReduce, progress.Phase);
        Assert.Equal((1, 41), (progress.Epoch, progress.Step));
        Assert.Equal((8L, 7L), (progress.Issued, progress.Completed));
        Assert.True(progress.InCollective);
        Assert.Equal([7L, 8L], progress.Collectives.Select(c => c.Sequence));
        Assert.Equal(CollectiveState.Finished, progress.Collectives[0].State);
        Assert.Equal((CollectiveKind.AllReduce, 4L << 20, CollectiveState.Running, 0L),
            (progress.Collectives[1].Kind, progress.Collectives[1].Bytes, progress.Collectives[1].State, progress.Collectives[1].Finished));
        Assert.Contains("in the gradient all-reduce of step 42 (epoch 1); last collective #8 all-reduce of 4 MiB, not finished", HangWatch.Where(progress));

        worker.Completed(8, succeeded: false);
        progress = agent.Read()!;
        Assert.Equal(CollectiveState.Failed, progress.Collectives[1].State);
        Assert.False(progress.InCollective);
    }

    [Fact]
    public void Only_the_last_collectives_are_kept_in_order_and_the_longest_step_is_tracked()
    {
        using var agent = ProgressFile.Create(_path);
        using var worker = ProgressFile.Open(_path);
        for (var seq = 1; seq <= 100; seq++)
        {
            worker.Issued(seq, CollectiveKind.AllReduce, seq);
            worker.Completed(seq, true);
        }
        worker.StepStarted(0, 0);
        Thread.Sleep(50);
        worker.StepEnded(1);

        var progress = agent.Read()!;
        Assert.Equal(Enumerable.Range(100 - ProgressFile.Capacity + 1, ProgressFile.Capacity).Select(s => (long)s), progress.Collectives.Select(c => c.Sequence));
        Assert.Equal(1, progress.StepsThisProcess);
        Assert.InRange(progress.LongestStep / (double)Stopwatch.Frequency, 0.04, 5);
    }

    public void Dispose() => File.Delete(_path);
}
