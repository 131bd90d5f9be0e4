using Microsoft.Extensions.Logging;
using Trainer.Distributed;
using Trainer.Distributed.Store;
using Trainer.Runtime;

namespace Trainer.Watchdog;

/// <summary>After a failed round: every rank's <see cref="FlightRecord"/>, gathered through the round's store by rank 0's agent.</summary>
internal static class FlightRecorder
{
    /// <summary>How long rank 0's agent waits for the other ranks' flight records of a failed round.</summary>
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private static string Key(int rank) => $"flight/{rank}";

    /// <summary>
    /// Every agent puts its worker's flight record in the store; rank 0's gathers them (waiting a few seconds for the
    /// others), prints one table and keeps it as JSON in the output folder. Without the store, an agent prints its own.
    /// </summary>
    public static async Task RecordAsync(IStore? roundStore, DistributedContract contract, int round, ProgressFile progress, string? outputFolder, ILogger logger)
    {
        if (progress.Read() is not { } snapshot)
            return; // the worker ended before it opened the file: it never reached a collective
        var mine = FlightRecord.From(contract.Rank, Environment.MachineName, snapshot);
        List<FlightRecord> records = [mine];
        if (roundStore is { } agents)
        {
            try
            {
                await agents.SetAsync(Key(contract.Rank), mine.ToBytes());
                if (!contract.IsMaster)
                    return;
                var others = Enumerable.Range(1, contract.WorldSize - 1).Select(Key).ToArray();
                try
                {
                    await agents.WaitAsync(others, Wait);
                }
                catch (TimeoutException)
                {
                }
                foreach (var key in others)
                    if (await agents.CheckAsync(key) && FlightRecord.Parse(await agents.GetAsync(key)) is { } record)
                        records.Add(record);
            }
            catch (Exception e) when (e is IOException or TimeoutException or StoreException or ObjectDisposedException)
            {
                logger.LogDebug("agent: rank {Rank}: flight records through the store failed: {Reason}", contract.Rank, e.Message);
            }
        }
        var table = FlightRecord.Table(round, records, contract.WorldSize, DateTimeOffset.UtcNow);
        logger.LogWarning("agent: rank {Rank}: {FlightRecord}", contract.Rank, table);
        if (outputFolder is not { } folder)
            return;
        var file = Path.Combine(folder, $"flight-record-round-{round}.json");
        try
        {
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(file, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(records.OrderBy(r => r.Rank).ToList(), TrainerJson.Default.ListFlightRecord));
            logger.LogInformation("agent: rank {Rank}: flight record kept in {File}", contract.Rank, file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("agent: rank {Rank}: could not write {File}: {Reason}", contract.Rank, file, e.Message);
        }
    }
}
