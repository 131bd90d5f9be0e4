using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Trainer.Distributed;
using Trainer.Runtime;

namespace Trainer.Watchdog;

/// <summary>
/// Where one rank was when a round failed: its phase and step and its last collectives, read by its agent from the
/// worker's progress file (so a frozen or dead worker has one too). Rank 0's agent gathers every rank's record
/// through the store and prints one table, where a mismatch (one rank in all-reduce #812, the others in #813)
/// stands out; the same goes to flight-record-round-N.json in the output folder.
/// </summary>
internal sealed record FlightRecord(int Rank, string Host, int Pid, string Phase, int Epoch, int Step, long Issued, long Completed, DateTimeOffset Taken,
    IReadOnlyList<FlightEntry> Collectives)
{
    public const int RowsPerRank = 4;

    public static FlightRecord From(int rank, string host, ProgressSnapshot progress)
    {
        var nowTicks = Stopwatch.GetTimestamp();
        var now = DateTimeOffset.UtcNow;
        DateTimeOffset Wall(long ticks) => now - TimeSpan.FromSeconds((nowTicks - ticks) / (double)Stopwatch.Frequency);
        return new FlightRecord(rank, host, progress.Pid, progress.Phase.Describe(), progress.Epoch, progress.Step + 1, progress.Issued, progress.Completed, now,
            [.. progress.Collectives.Select(c => new FlightEntry(c.Sequence, KindName(c.Kind), c.Bytes, Wall(c.Started),
                c.Finished == 0 ? null : Wall(c.Finished), c.State.ToString().ToLowerInvariant()))]);
    }

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, TrainerJson.Default.FlightRecord);

    public static FlightRecord? Parse(byte[] bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, TrainerJson.Default.FlightRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Every rank's last collectives, newest first, times relative to <paramref name="now"/>; then any mismatch in words.</summary>
    public static string Table(int round, IReadOnlyList<FlightRecord> records, int worldSize, DateTimeOffset now)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"flight record of round {round} (each rank's last {RowsPerRank} collectives, newest first; times before now):");
        text.AppendLine("rank  host             pid      phase                                   step  seq     collective  bytes       started   finished");
        foreach (var record in records.OrderBy(r => r.Rank))
        {
            var rows = record.Collectives.OrderByDescending(c => c.Sequence).Take(RowsPerRank).Select(entry => Columns(entry, now)).ToList();
            if (rows.Count == 0)
                rows.Add(NoCollective);
            foreach (var (columns, i) in rows.Select((c, i) => (c, i)))
            {
                var head = i == 0
                    ? $"{record.Rank,-5} {Clip(record.Host, 16),-16} {record.Pid,-8} {Clip(record.Phase, 39),-39} {record.Step,-5} "
                    : new string(' ', 5 + 1 + 16 + 1 + 8 + 1 + 39 + 1 + 5 + 1);
                text.AppendLine(CultureInfo.InvariantCulture, $"{head}{columns.Sequence,-7} {columns.Kind,-11} {columns.Bytes,-11} {columns.Started,-9} {columns.Finished}");
            }
        }
        var missing = Enumerable.Range(0, worldSize).Except(records.Select(r => r.Rank)).ToList();
        if (missing.Count > 0)
            text.AppendLine(CultureInfo.InvariantCulture, $"no record from rank(s) {string.Join(", ", missing)} (their agent did not answer)");
        if (Mismatch(records) is { } mismatch)
            text.AppendLine(mismatch);
        return text.ToString().TrimEnd();
    }

    private readonly record struct Row(string Sequence, string Kind, string Bytes, string Started, string Finished);

    /// <summary>The row of a rank that never issued a collective.</summary>
    private static readonly Row NoCollective = new("-", "-", "-", "-", "-");

    private static Row Columns(FlightEntry entry, DateTimeOffset now) => new("#" + entry.Sequence, entry.Kind, Size(entry.Bytes), Ago(now - entry.Started),
        entry.State switch
        {
            "failed" => "failed",
            _ when entry.Finished is { } f => Ago(now - f),
            _ => "NOT DONE",
        });

    /// <summary>"ranks 0, 1 issued collective #813; rank 2 only #812": the ranks that fell behind, or null when all agree.</summary>
    internal static string? Mismatch(IReadOnlyList<FlightRecord> records)
    {
        if (records.Count < 2) return null;
        var groups = records.GroupBy(r => r.Issued).OrderByDescending(g => g.Key).ToList();
        if (groups.Count == 1) return null;
        static string Ranks(IEnumerable<FlightRecord> rs) => (rs.Count() == 1 ? "rank " : "ranks ") + string.Join(", ", rs.Select(r => r.Rank).Order());
        var ahead = groups[0];
        return $"mismatch: {Ranks(ahead)} issued collective #{ahead.Key}; " +
               string.Join("; ", groups.Skip(1).Select(g => $"{Ranks(g)} only #{g.Key}")) + " (the rank furthest behind is where to look)";
    }

    internal static string KindName(CollectiveKind kind) => kind switch
    {
        CollectiveKind.AllReduce => "all-reduce",
        CollectiveKind.Broadcast => "broadcast",
        CollectiveKind.AllGather => "all-gather",
        CollectiveKind.Barrier => "barrier",
        _ => $"kind {(int)kind}",
    };

    internal static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1 << 20 => $"{bytes / 1024.0:0.#} KiB",
        _ => $"{bytes / (double)(1 << 20):0.#} MiB",
    };

    private static string Ago(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, span.TotalSeconds):0.0} s");

    private static string Clip(string text, int width) => text.Length <= width ? text : text[..(width - 1)] + "…";
}

/// <summary>One collective of a <see cref="FlightRecord"/>; <paramref name="State"/> is running, finished or failed.</summary>
internal sealed record FlightEntry(long Sequence, string Kind, long Bytes, DateTimeOffset Started, DateTimeOffset? Finished, string State);
