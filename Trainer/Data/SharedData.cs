using System.Text;
using Trainer.Distributed;
using Trainer.Distributed.Store;
using Trainer.Faults;
using Trainer.Training;

namespace Trainer.Data;

/// <summary>
/// Loads the run's data on every rank without racing for the download: rank 0 loads first (downloading into the
/// cache when needed) and publishes which dataset it resolved ("auto" may fall back to synthetic) or its error;
/// the other ranks then load the same dataset, so every rank trains on the same data or all stop.
/// </summary>
internal static class SharedData
{
    private static readonly TimeSpan DownloadWait = TimeSpan.FromHours(2);

    public static async Task<DataBunch> LoadAsync(TrainOptions options, DistributedWorld? world, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        Task<DataBunch> Load(string dataset) =>
            DataBunch.LoadAsync(dataset, options.Data, options.DataUrl, options.LimitTrain, options.LimitValid, options.Seed, progress, cancellationToken);

        if (world is null)
            return await Load(options.Dataset);

        var key = world.Session.KeyPrefix + "data";
        if (world.Contract.Rank == 0)
        {
            try
            {
                var data = await Load(options.Dataset);
                FaultInjection.StrikeIfArmed(FaultPoint.Data);
                await world.Session.Store.SetAsync(key, Encoding.UTF8.GetBytes("ok:" + data.Name + ":" + data.Fallback), cancellationToken);
                return data;
            }
            catch (Exception e) when (IsDataError(e))
            {
                await world.Session.Store.SetAsync(key, Encoding.UTF8.GetBytes("error:" + e.Message), cancellationToken);
                throw;
            }
        }

        FaultInjection.StrikeIfArmed(FaultPoint.Data);
        var verdict = Encoding.UTF8.GetString(await world.Session.Store.GetAsync(key, DownloadWait, cancellationToken));
        if (verdict.StartsWith("error:", StringComparison.Ordinal))
            throw new IOException($"rank 0 could not load the data: {verdict["error:".Length..]}");
        var parts = verdict.Split(':', 3);
        var resolved = await Load(parts[1]);
        return parts[2].Length > 0 ? resolved with { Fallback = parts[2] } : resolved;
    }

    /// <summary>A problem with the data itself (missing, unreadable, malformed, not downloadable), not with the run's connections.</summary>
    public static bool IsDataError(Exception e) =>
        e is InvalidDataException or UnauthorizedAccessException || e is IOException and not StoreConnectionLostException;
}
