using Trainer.Watchdog;

namespace Trainer.Tests.Watchdog;

public sealed class FlightRecordTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    private static FlightRecord Record(int rank, long issued, bool lastFinished) => new(rank, $"host-{rank}", 100 + rank, "the gradient all-reduce", 1, 38, issued,
        lastFinished ? issued : issued - 1, Now,
        [
            new FlightEntry(issued - 1, "broadcast", 512, Now.AddSeconds(-13), Now.AddSeconds(-12.9), "finished"),
            new FlightEntry(issued, "all-reduce", 3 << 20, Now.AddSeconds(-12.5), lastFinished ? Now.AddSeconds(-12) : null, lastFinished ? "finished" : "running"),
        ]);

    [Fact]
    public void The_table_shows_every_ranks_last_collectives_and_names_the_rank_behind()
    {
        var table = FlightRecord.Table(0, [Record(1, 813, false), Record(0, 813, false), Record(2, 812, true)], 4, Now);
        var lines = table.Split('\n');

        Assert.StartsWith("flight record of round 0", lines[0]);
        Assert.Matches(@"^0 +host-0 +100 +the gradient all-reduce +38 +#813 +all-reduce +3 MiB +12\.5 s +NOT DONE$", lines[2]);
        Assert.Matches(@"^ +#812 +broadcast +512 B +13\.0 s +12\.9 s$", lines[3]);
        Assert.Matches(@"^2 +host-2 +102 .* #812 +all-reduce +3 MiB +12\.5 s +12\.0 s$", lines[6]);
        Assert.Contains("no record from rank(s) 3 (their agent did not answer)", table);
        Assert.EndsWith("mismatch: ranks 0, 1 issued collective #813; rank 2 only #812 (the rank furthest behind is where to look)", table);
    }

    [Fact]
    public void Ranks_that_agree_show_no_mismatch_and_the_record_survives_the_store()
    {
        var record = Record(0, 9, true);
        Assert.Null(FlightRecord.Mismatch([record, Record(1, 9, false)]));
        var back = FlightRecord.Parse(record.ToBytes())!;
        Assert.Equal(record.Collectives, back.Collectives);
        Assert.Equal((record.Rank, record.Host, record.Issued), (back.Rank, back.Host, back.Issued));
        Assert.Null(FlightRecord.Parse("not json"u8.ToArray()));
    }
}
