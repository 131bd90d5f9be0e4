using System.Diagnostics;

namespace Trainer.Tests.Distributed;

[Collection("Distributed")]
public class BarrierTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task No_rank_leaves_the_barrier_before_the_last_one_entered(int worldSize)
    {
        using var ranks = await Ranks.CreateAsync(worldSize);
        var clock = Stopwatch.StartNew();
        var times = ranks.RunAll(group =>
        {
            Thread.Sleep(150 * group.Rank);
            var entered = clock.Elapsed;
            group.Barrier();
            return (Entered: entered, Left: clock.Elapsed);
        });
        var lastEntry = times.Max(t => t.Entered);
        Assert.All(times, t => Assert.True(t.Left >= lastEntry, $"a rank left at {t.Left} before the last rank entered at {lastEntry}"));
    }
}
