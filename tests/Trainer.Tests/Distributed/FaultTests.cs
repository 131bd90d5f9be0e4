using System.Diagnostics;
using TorchSharp;
using Trainer.Distributed;
using Trainer.Distributed.Cpu;

namespace Trainer.Tests.Distributed;

/// <summary>
/// A lost or stalled rank must never leave the others hanging: every survivor raises, naming the rank at fault,
/// long before the collective timeout (here one minute) where the fault is a lost connection.
/// </summary>
[Collection("Distributed")]
public class FaultTests
{
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(2, 1)]
    [InlineData(4, 2)]
    public async Task A_rank_whose_connections_drop_mid_collective_is_named_by_every_survivor(int worldSize, int victim)
    {
        using var ranks = await Ranks.CreateAsync(worldSize, TimeSpan.FromMinutes(1));
        var outcomes = RunUntilFailure(ranks, victim, group => ((CpuProcessGroup)group).AbortConnections());
        AssertSurvivorsNamed(outcomes, victim);
    }

    [Fact]
    public async Task A_rank_disposed_mid_collective_is_named_by_every_survivor()
    {
        using var ranks = await Ranks.CreateAsync(3, TimeSpan.FromMinutes(1));
        var outcomes = RunUntilFailure(ranks, victim: 0, group => group.Dispose());
        AssertSurvivorsNamed(outcomes, 0);
    }

    [Fact]
    public async Task A_stalled_rank_times_out_the_collective_on_every_other_rank_naming_it()
    {
        var timeout = TimeSpan.FromSeconds(2);
        using var ranks = await Ranks.CreateAsync(3, timeout);
        var clock = Stopwatch.StartNew();
        var outcomes = ranks.Run(group =>
        {
            using var tensor = torch.ones(100_000);
            if (group.Rank == 2)
            {
                Thread.Sleep(timeout * 2); // stalled: joins long after the others gave up
                clock.Stop();
            }
            group.AllReduce(tensor);
            return clock.Elapsed;
        });
        for (var rank = 0; rank < 2; rank++)
        {
            var error = Assert.IsAssignableFrom<DistributedException>(outcomes[rank].Error);
            Assert.Equal(2, error.FailedRank);
            Assert.Contains("Rank 2 did not join", error.Message);
        }
        Assert.Equal(0, ranks[0].Rank);
        Assert.IsType<CollectiveTimeoutException>(outcomes[0].Error); // rank 2's right neighbour saw it time out itself
        // The stalled rank itself learns that the group failed as soon as it calls in.
        Assert.IsAssignableFrom<DistributedException>(outcomes[2].Error);
    }

    [Fact]
    public async Task After_a_failure_the_group_is_unusable_and_says_why()
    {
        using var ranks = await Ranks.CreateAsync(2, TimeSpan.FromMinutes(1));
        var outcomes = ranks.Run(group =>
        {
            using var tensor = torch.ones(group.Rank == 0 ? 10 : 11); // mismatched sizes
            var first = Assert.ThrowsAny<DistributedException>(() => group.AllReduce(tensor));
            var clock = Stopwatch.StartNew();
            var again = Assert.ThrowsAny<DistributedException>(() => group.Barrier());
            var async = Assert.ThrowsAny<DistributedException>(() => group.AllReduceAsync(tensor));
            return (First: first, Again: again, Async: async, Elapsed: clock.Elapsed);
        });
        foreach (var (value, error) in outcomes)
        {
            Assert.Null(error);
            Assert.Contains("Collective mismatch", value.First.Message);
            Assert.Contains("10", value.First.Message);
            Assert.Contains("11", value.First.Message);
            Assert.Contains("unusable after an earlier failure", value.Again.Message);
            Assert.Contains("unusable after an earlier failure", value.Async.Message);
            Assert.True(value.Elapsed < TimeSpan.FromSeconds(5), $"a call on a failed group took {value.Elapsed}");
        }
    }

    [Fact]
    public async Task A_rank_that_exits_between_collectives_fails_the_next_one_promptly()
    {
        using var ranks = await Ranks.CreateAsync(3, TimeSpan.FromMinutes(1));
        var outcomes = ranks.Run(group =>
        {
            using var tensor = torch.ones(1000);
            group.AllReduce(tensor);
            if (group.Rank == 1)
            {
                group.Dispose(); // idle: a clean exit, as when the process ends
                return TimeSpan.Zero;
            }
            Thread.Sleep(200);
            var clock = Stopwatch.StartNew();
            var error = Assert.ThrowsAny<DistributedException>(() => group.AllReduce(tensor));
            Assert.Equal(1, error.FailedRank);
            Assert.Contains("Rank 1", error.Message);
            return clock.Elapsed;
        });
        Assert.All(outcomes, o => Assert.Null(o.Error));
        Assert.All(outcomes, o => Assert.True(o.Value < Prompt, $"took {o.Value}"));
    }

    /// <summary>Every rank all-reduces 16 MB tensors in a loop; shortly after the start, <paramref name="strike"/> hits the victim.</summary>
    private static Outcome<TimeSpan>[] RunUntilFailure(Ranks ranks, int victim, Action<ProcessGroup> strike)
    {
        var struck = new ManualResetEventSlim();
        var clock = new Stopwatch();
        var striker = new Thread(() =>
        {
            Thread.Sleep(300);
            clock.Start();
            strike(ranks[victim]);
            struck.Set();
        }) { IsBackground = true };
        striker.Start();
        var outcomes = ranks.Run(group =>
        {
            using var tensor = torch.ones(4_000_000);
            for (var i = 0; i < 100_000; i++)
                group.AllReduce(tensor, ReduceOp.Avg);
            throw new InvalidOperationException("the collectives kept succeeding after a rank was lost");
#pragma warning disable CS0162
            return TimeSpan.Zero;
#pragma warning restore CS0162
        }, TimeSpan.FromSeconds(90));
        Assert.True(struck.Wait(TimeSpan.FromSeconds(10)));
        var elapsed = clock.Elapsed;
        Assert.True(elapsed < Prompt, $"the survivors took {elapsed} to notice");
        return outcomes;
    }

    private static void AssertSurvivorsNamed(Outcome<TimeSpan>[] outcomes, int victim)
    {
        for (var rank = 0; rank < outcomes.Length; rank++)
        {
            if (rank == victim)
                continue;
            var error = Assert.IsAssignableFrom<DistributedException>(outcomes[rank].Error);
            Assert.IsNotType<CollectiveTimeoutException>(error);
            Assert.Equal(victim, error.FailedRank);
            Assert.Contains($"Rank {victim}", error.Message);
        }
    }
}
