using Dashboard.Runs;

namespace Dashboard.Tests;

/// <summary>Reports as a trainer rank sends them.</summary>
internal static class Reports
{
    public static readonly DateTimeOffset T0 = DateTimeOffset.UtcNow.AddMinutes(-5);

    public static RankStart Start(int worldSize, int rank) =>
        new(worldSize, rank, T0, new HardwareInfo($"host-{rank}", "Linux", 2, 1, 8L << 30, "cpu", null, 1000 + rank, "cpu", ".NET 10"),
            new Dictionary<string, string> { ["bs"] = "16", ["lr"] = "0.003", ["dataset"] = "synthetic", ["rank_that_sent"] = rank.ToString() });

    public static FitInfo Fit(int epochs = 2, int batchesPerEpoch = 10) =>
        new(epochs, 0, batchesPerEpoch, epochs * batchesPerEpoch, 16, 160, 40, T0);

    public static BatchPoint[] Batches(int fromStep, int toStep, int batchesPerEpoch = 10) =>
        [.. Enumerable.Range(fromStep, toStep - fromStep + 1).Select(step => new BatchPoint(step, (step - 1) / batchesPerEpoch, (step - 1) % batchesPerEpoch,
            2.3 - step * 0.05, 2.3 - step * 0.04, 1e-3, 0.9, 50, 0.32, 0.01, 0.08, 300L << 20, T0.AddSeconds(step)))];

    public static EpochPoint Epoch(int epoch, int epochs, double accuracy) =>
        new(epoch, epochs, 1.5, 1.4, accuracy, 50, 10, T0.AddSeconds(epoch * 10));

    public static RankEnd End(string status, double accuracy) => new(status, 2, accuracy, 50, 20, null, T0.AddSeconds(21));
}
