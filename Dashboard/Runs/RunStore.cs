using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Dashboard.Runs;

/// <summary>
/// Every run the trainers reported, in one SQLite file: the live run is read from the same tables as the history,
/// so a Dashboard restarted mid-run picks up where it was. Writes are serialised (one Dashboard process);
/// reads run concurrently (WAL).
/// </summary>
public sealed class RunStore
{
    private const int MaxPointsPerRank = 3000;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly string _connectionString;
    private readonly Lock _writeLock = new();
    private readonly TimeProvider _clock;

    public RunStore(string databasePath, TimeProvider? clock = null)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(databasePath));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, DefaultTimeout = 10 }.ToString();
        _clock = clock ?? TimeProvider.System;
        DatabasePath = databasePath;
        using var connection = Open();
        Execute(connection, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, world_size INTEGER NOT NULL, config TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ranks (
                run_id TEXT NOT NULL, rank INTEGER NOT NULL, local_rank INTEGER NOT NULL, started_at INTEGER NOT NULL,
                hardware TEXT, fit TEXT, end_report TEXT, dropped INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL,
                PRIMARY KEY (run_id, rank));
            CREATE TABLE IF NOT EXISTS batches (
                run_id TEXT NOT NULL, rank INTEGER NOT NULL, step INTEGER NOT NULL, epoch INTEGER NOT NULL, batch INTEGER NOT NULL,
                loss REAL, smooth_loss REAL, lr REAL, momentum REAL, images_per_second REAL, step_seconds REAL,
                data_wait_seconds REAL, all_reduce_seconds REAL, memory_bytes INTEGER, time INTEGER NOT NULL,
                PRIMARY KEY (run_id, rank, step));
            CREATE TABLE IF NOT EXISTS epochs (
                run_id TEXT NOT NULL, rank INTEGER NOT NULL, epoch INTEGER NOT NULL, epochs INTEGER NOT NULL,
                train_loss REAL, valid_loss REAL, accuracy REAL, images_per_second REAL, duration_seconds REAL, time INTEGER NOT NULL,
                PRIMARY KEY (run_id, rank, epoch));
            """);
    }

    public string DatabasePath { get; }

    /// <summary>Stores one rank's report. The first report of a run creates it; repeated points replace the old ones.</summary>
    public void Add(string runId, int rank, RankReport report)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_writeLock)
        {
            using var connection = Open();
            Execute(connection, "BEGIN IMMEDIATE");
            try
            {
                if (report.Start is { } start)
                {
                    Execute(connection, """
                        INSERT INTO runs (run_id, created_at, world_size, config) VALUES ($run, $now, $world, $config)
                        ON CONFLICT (run_id) DO UPDATE SET world_size = excluded.world_size, created_at = MIN(runs.created_at, excluded.created_at),
                            config = CASE WHEN $rank = 0 OR runs.config = '{}' THEN excluded.config ELSE runs.config END
                        """, ("$run", runId), ("$now", start.StartedAt.ToUnixTimeMilliseconds()), ("$world", start.WorldSize),
                        ("$config", JsonSerializer.Serialize(start.Config, Json)), ("$rank", rank));
                    Execute(connection, """
                        INSERT INTO ranks (run_id, rank, local_rank, started_at, hardware, last_seen) VALUES ($run, $rank, $local, $started, $hardware, $now)
                        ON CONFLICT (run_id, rank) DO UPDATE SET local_rank = excluded.local_rank, started_at = excluded.started_at, hardware = excluded.hardware
                        """, ("$run", runId), ("$rank", rank), ("$local", start.LocalRank), ("$started", start.StartedAt.ToUnixTimeMilliseconds()),
                        ("$hardware", JsonSerializer.Serialize(start.Hardware, Json)), ("$now", now));
                }
                else
                {
                    // Points from a rank whose start has not arrived yet (the Dashboard started late): keep them anyway.
                    Execute(connection, "INSERT OR IGNORE INTO runs (run_id, created_at, world_size, config) VALUES ($run, $now, 0, '{}')", ("$run", runId), ("$now", now));
                    Execute(connection, "INSERT OR IGNORE INTO ranks (run_id, rank, local_rank, started_at, last_seen) VALUES ($run, $rank, 0, $now, $now)",
                        ("$run", runId), ("$rank", rank), ("$now", now));
                }
                Execute(connection, "UPDATE ranks SET last_seen = $now, dropped = MAX(dropped, $dropped) WHERE run_id = $run AND rank = $rank",
                    ("$run", runId), ("$rank", rank), ("$now", now), ("$dropped", report.Dropped));
                if (report.Fit is { } fit)
                    Execute(connection, "UPDATE ranks SET fit = $fit WHERE run_id = $run AND rank = $rank",
                        ("$run", runId), ("$rank", rank), ("$fit", JsonSerializer.Serialize(fit, Json)));
                if (report.End is { } end)
                    Execute(connection, "UPDATE ranks SET end_report = $end WHERE run_id = $run AND rank = $rank",
                        ("$run", runId), ("$rank", rank), ("$end", JsonSerializer.Serialize(end, Json)));
                AddBatches(connection, runId, rank, report.Batches ?? []);
                AddEpochs(connection, runId, rank, report.Epochs ?? []);
                Execute(connection, "COMMIT");
            }
            catch
            {
                Execute(connection, "ROLLBACK");
                throw;
            }
        }
    }

    public IReadOnlyList<RunSummary> List()
    {
        using var connection = Open();
        var ids = Query(connection, "SELECT run_id FROM runs ORDER BY created_at DESC", r => r.GetString(0));
        return [.. ids.Select(id => Load(connection, id, withSeries: false)!.Summary)];
    }

    /// <summary>The run with its curves; with <paramref name="afterStep"/>, only the steps after it (the run page's refreshes).</summary>
    public RunDetail? Get(string runId, int? afterStep = null)
    {
        using var connection = Open();
        return Load(connection, runId, withSeries: true, afterStep);
    }

    public RunProgress? Progress(string runId)
    {
        using var connection = Open();
        return Load(connection, runId, withSeries: false)?.Progress;
    }

    private RunDetail? Load(SqliteConnection connection, string runId, bool withSeries, int? afterStep = null)
    {
        var run = Query(connection, "SELECT created_at, world_size, config FROM runs WHERE run_id = $run",
            r => (Created: r.GetInt64(0), WorldSize: r.GetInt32(1), Config: r.GetString(2)), ("$run", runId)).FirstOrDefault();
        if (run.Config is null) return null;
        var now = _clock.GetUtcNow();
        var ranks = Query(connection, """
            SELECT rank, local_rank, started_at, hardware, fit, end_report, dropped, last_seen FROM ranks WHERE run_id = $run ORDER BY rank
            """, r => (Rank: r.GetInt32(0), LocalRank: r.GetInt32(1), Started: r.GetInt64(2), Hardware: Read<HardwareInfo>(r, 3), Fit: Read<FitInfo>(r, 4),
                End: Read<RankEnd>(r, 5), Dropped: r.GetInt64(6), LastSeen: DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7))), ("$run", runId));

        var views = new List<RankView>();
        foreach (var rank in ranks)
        {
            var epochs = Query(connection, """
                SELECT epoch, epochs, train_loss, valid_loss, accuracy, images_per_second, duration_seconds, time FROM epochs
                WHERE run_id = $run AND rank = $rank ORDER BY epoch
                """, r => new EpochPoint(r.GetInt32(0), r.GetInt32(1), r.GetDouble(2), r.GetDouble(3), r.GetDouble(4), r.GetDouble(5), r.GetDouble(6),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7))), ("$run", runId), ("$rank", rank.Rank));
            var recent = Query(connection, """
                SELECT step, epoch, images_per_second, step_seconds, all_reduce_seconds, memory_bytes FROM batches
                WHERE run_id = $run AND rank = $rank ORDER BY step DESC LIMIT 50
                """, r => (Step: r.GetInt32(0), Epoch: r.GetInt32(1), Ips: r.GetDouble(2), StepS: r.GetDouble(3), AllReduceS: r.GetDouble(4), Memory: r.GetInt64(5)),
                ("$run", runId), ("$rank", rank.Rank));
            var stepTime = recent.Sum(p => p.StepS);
            var rankStatus = RunStatus.OfRank(rank.End?.Status, rank.LastSeen, now);
            views.Add(new RankView(rank.Rank, rank.LocalRank, rankStatus, rank.Hardware, rank.Fit, rank.End, rank.Dropped, rank.LastSeen,
                recent.Count > 0 ? recent[0].Memory : null,
                stepTime > 0 ? recent.Sum(p => p.AllReduceS) / stepTime : null,
                ImagesPerSecond(recent.Select(p => (p.Ips, p.StepS)).ToList(), rank.Fit?.BatchSize),
                withSeries ? Series(connection, runId, rank.Rank, afterStep ?? 0) : EmptySeries,
                epochs));
        }

        var worldSize = Math.Max(run.WorldSize, views.Count);
        var status = RunStatus.OfRun([.. views.Select(v => v.Status)], worldSize);
        var started = DateTimeOffset.FromUnixTimeMilliseconds(run.Created);
        var ended = status is RunStatus.Running ? (DateTimeOffset?)null : views.Select(v => v.End?.Time ?? v.LastSeen).DefaultIfEmpty(started).Max();
        var main = views.FirstOrDefault(v => v.Rank == 0) ?? views.FirstOrDefault();
        var lastEpoch = main?.Epochs.LastOrDefault();
        var imagesPerSecond = views.Sum(v => v.End is { } end ? end.ImagesPerSecond : v.ImagesPerSecond ?? 0);
        var config = JsonSerializer.Deserialize<Dictionary<string, string>>(run.Config, Json) ?? [];
        var summary = new RunSummary(runId, status, started, ended, ((ended ?? now) - started).TotalSeconds, worldSize, views.Count,
            lastEpoch?.Epoch ?? 0, main?.Fit?.Epochs ?? lastEpoch?.Epochs, main?.End?.Accuracy ?? lastEpoch?.Accuracy, lastEpoch?.ValidLoss,
            imagesPerSecond, views.Sum(v => v.Dropped), config);
        return new RunDetail(summary, Progress(connection, runId, summary, main, now), views);
    }

    /// <summary>Throughput over the recent steps: images over their summed step time (the per-step figure averages badly).</summary>
    private static double? ImagesPerSecond(List<(double Ips, double StepSeconds)> recent, int? batchSize)
    {
        if (recent.Count == 0) return null;
        var seconds = recent.Sum(p => p.StepSeconds);
        return seconds > 0 && batchSize is > 0 ? recent.Count * batchSize.Value / seconds : recent.Average(p => p.Ips);
    }

    private static RunProgress Progress(SqliteConnection connection, string runId, RunSummary summary, RankView? main, DateTimeOffset now)
    {
        var fit = main?.Fit;
        var latest = main is null ? default : Query(connection, "SELECT step, epoch, time FROM batches WHERE run_id = $run AND rank = $rank ORDER BY step DESC LIMIT 1",
            r => (Step: r.GetInt32(0), Epoch: r.GetInt32(1), Time: DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2))), ("$run", runId), ("$rank", main.Rank)).FirstOrDefault();
        var epochs = fit?.Epochs ?? summary.Epochs ?? 0;
        var totalSteps = fit?.TotalSteps ?? 0;
        var step = latest.Step;
        var epoch = summary.Status == RunStatus.Running ? (latest.Step > 0 ? latest.Epoch + 1 : (fit?.StartEpoch ?? 0) + 1) : summary.EpochsDone;
        var fraction = totalSteps > 0 ? Math.Clamp((double)step / totalSteps, 0, 1) : 0;
        if (summary.Status == RunStatus.Finished) fraction = 1;
        double? eta = null;
        if (fit is not null && summary.Status == RunStatus.Running)
        {
            var startStep = fit.StartEpoch * fit.BatchesPerEpoch;
            var done = step - startStep;
            if (done > 0)
                eta = Math.Max(0, (latest.Time - fit.StartedAt).TotalSeconds / done * (totalSteps - step) - (now - latest.Time).TotalSeconds);
        }
        var text = summary.Status switch
        {
            RunStatus.Running when epochs == 0 => "starting",
            RunStatus.Running => $"epoch {Math.Min(epoch, epochs)}/{epochs} · {fraction * 100:F0}%" + (eta is { } e ? $" · ETA {RunStatus.FormatDuration(e)}" : ""),
            RunStatus.Finished or RunStatus.Stopped => $"{summary.Status} · {summary.EpochsDone}/{epochs} epochs" + (summary.Accuracy is { } a ? $" · accuracy {a:F4}" : ""),
            _ => summary.Status,
        };
        return new RunProgress(runId, summary.Status, Math.Min(epoch, Math.Max(epochs, epoch)), epochs, step, totalSteps, fraction, eta, summary.Accuracy, text);
    }

    private static readonly StepSeries EmptySeries = new(0, [], [], [], [], [], [], [], [], []);

    /// <summary>The rank's steps after <paramref name="afterStep"/>, thinned to at most <see cref="MaxPointsPerRank"/> (the newest always kept).</summary>
    private static StepSeries Series(SqliteConnection connection, string runId, int rank, int afterStep)
    {
        var count = Query(connection, "SELECT COUNT(*) FROM batches WHERE run_id = $run AND rank = $rank", r => r.GetInt32(0), ("$run", runId), ("$rank", rank))[0];
        var selected = afterStep <= 0 ? count
            : Query(connection, "SELECT COUNT(*) FROM batches WHERE run_id = $run AND rank = $rank AND step > $after", r => r.GetInt32(0),
                ("$run", runId), ("$rank", rank), ("$after", afterStep))[0];
        var stride = Math.Max(1, (selected + MaxPointsPerRank - 1) / MaxPointsPerRank);
        var rows = Query(connection, """
            SELECT step, loss, smooth_loss, lr, momentum, images_per_second, step_seconds, data_wait_seconds, all_reduce_seconds
            FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY step DESC) - 1 AS back FROM batches WHERE run_id = $run AND rank = $rank AND step > $after)
            WHERE back % $stride = 0 ORDER BY step
            """, r => (Step: r.GetInt32(0), Loss: r.GetDouble(1), Smooth: r.GetDouble(2), Lr: r.GetDouble(3), Mom: r.GetDouble(4), Ips: r.GetDouble(5),
            StepS: r.GetDouble(6), WaitS: r.GetDouble(7), AllReduceS: r.GetDouble(8)), ("$run", runId), ("$rank", rank), ("$stride", stride), ("$after", afterStep));
        return new StepSeries(count, [.. rows.Select(p => p.Step)], [.. rows.Select(p => p.Loss)], [.. rows.Select(p => p.Smooth)],
            [.. rows.Select(p => p.Lr)], [.. rows.Select(p => p.Mom)], [.. rows.Select(p => p.Ips)], [.. rows.Select(p => p.StepS)],
            [.. rows.Select(p => p.WaitS)], [.. rows.Select(p => p.AllReduceS)]);
    }

    private static void AddBatches(SqliteConnection connection, string runId, int rank, IReadOnlyList<BatchPoint> points)
    {
        if (points.Count == 0) return;
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT OR REPLACE INTO batches VALUES ($run, $rank, $step, $epoch, $batch, $loss, $smooth, $lr, $mom, $ips, $stepS, $waitS, $allReduceS, $memory, $time)
            """;
        var parameters = new[] { "$run", "$rank", "$step", "$epoch", "$batch", "$loss", "$smooth", "$lr", "$mom", "$ips", "$stepS", "$waitS", "$allReduceS", "$memory", "$time" }
            .Select(name => command.Parameters.Add(new SqliteParameter { ParameterName = name })).ToArray();
        foreach (var p in points)
        {
            object[] values = [runId, rank, p.Step, p.Epoch, p.Batch, Finite(p.Loss), Finite(p.SmoothLoss), Finite(p.LearningRate), Finite(p.Momentum),
                Finite(p.ImagesPerSecond), Finite(p.StepSeconds), Finite(p.DataWaitSeconds), Finite(p.AllReduceSeconds), p.MemoryBytes, p.Time.ToUnixTimeMilliseconds()];
            for (var i = 0; i < values.Length; i++) parameters[i].Value = values[i];
            command.ExecuteNonQuery();
        }
    }

    private static void AddEpochs(SqliteConnection connection, string runId, int rank, IReadOnlyList<EpochPoint> points)
    {
        foreach (var p in points)
            Execute(connection, "INSERT OR REPLACE INTO epochs VALUES ($run, $rank, $epoch, $epochs, $train, $valid, $accuracy, $ips, $duration, $time)",
                ("$run", runId), ("$rank", rank), ("$epoch", p.Epoch), ("$epochs", p.Epochs), ("$train", Finite(p.TrainLoss)), ("$valid", Finite(p.ValidLoss)),
                ("$accuracy", Finite(p.Accuracy)), ("$ips", Finite(p.ImagesPerSecond)), ("$duration", Finite(p.DurationSeconds)), ("$time", p.Time.ToUnixTimeMilliseconds()));
    }

    /// <summary>A diverged loss is NaN or infinite; JSON cannot carry those, so they are stored as the largest double.</summary>
    private static double Finite(double value) => double.IsFinite(value) ? value : double.IsNegativeInfinity(value) ? double.MinValue : double.MaxValue;

    private static T? Read<T>(SqliteDataReader reader, int column) where T : class =>
        reader.IsDBNull(column) ? null : JsonSerializer.Deserialize<T>(reader.GetString(column), Json);

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        command.ExecuteNonQuery();
    }

    private static List<T> Query<T>(SqliteConnection connection, string sql, Func<SqliteDataReader, T> read, params (string Name, object Value)[] parameters)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read()) rows.Add(read(reader));
        return rows;
    }
}
