using System.Text.Json;

namespace Trainer.Tests.Distributed;

/// <summary><c>Trainer train</c> launched by hand as two ranks with torchrun's variables, as a user would.</summary>
public class TrainProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    /// <summary>No thread setting (TRAINER_THREADS, OMP_NUM_THREADS): each rank takes its share of the cores.</summary>
    private static Dictionary<string, string?> Contract(int rank, int port, string cache) => new()
    {
        ["RANK"] = $"{rank}", ["LOCAL_RANK"] = $"{rank}", ["WORLD_SIZE"] = "2", ["LOCAL_WORLD_SIZE"] = "2",
        ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}", ["TORCHELASTIC_RUN_ID"] = "train-test",
        ["TRAINER_THREADS"] = null, ["OMP_NUM_THREADS"] = null, ["TRAINER_JOIN_TIMEOUT"] = "60",
        // No CIFAR-10 in the cache and a download address that refuses at once: "auto" must fall back, loudly.
        ["XDG_CACHE_HOME"] = cache, ["TRAINER_DATA_URL"] = "http://127.0.0.1:9/",
    };

    /// <summary>Both ranks as processes with <paramref name="args"/>, each run's result once both have exited.</summary>
    private static async Task<TrainerResult[]> RunTwoRanksAsync(string[] args, TempDirectory temp)
    {
        var port = FreeTcpPort.Next();
        var ranks = Enumerable.Range(0, 2).Select(rank => TrainerProcess.Start(args, Contract(rank, port, temp.Combine("cache")))).ToList();
        try
        {
            return await Task.WhenAll(ranks.Select(rank => rank.WaitAsync(Patience)));
        }
        finally
        {
            ranks.ForEach(rank => rank.Dispose());
        }
    }

    [Fact]
    public async Task TwoRanksTrainDataParallelFallingBackToSyntheticWhenCifarCannotBeHad()
    {
        using var temp = new TempDirectory();
        var output = temp.Combine("run");
        var results = await RunTwoRanksAsync(["train", "--preset", "quick", "--dataset", "auto", "--limit-train", "1024", "--limit-valid", "256", "--bs", "64", "--output", output], temp);

        var share = Math.Max(1, Environment.ProcessorCount / 2);
        foreach (var result in results)
        {
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.Contains("!!! WARNING: CIFAR-10 could not be had", result.StandardOutput);
            Assert.Contains($"threads: {share} torch threads ({Environment.ProcessorCount} cores / LOCAL_WORLD_SIZE 2 → {share} thread", result.StandardOutput);
            Assert.Contains($"; {share} torch threads", result.StandardOutput);
        }
        Assert.Contains("distributed: rank 0 of 2 (cpu), 512 training and 128 validation samples per rank", results[0].StandardOutput);
        Assert.Contains("rank 1 done: accuracy", results[1].StandardOutput);

        Assert.True(File.Exists(Path.Combine(output, "checkpoint.ckpt")));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "summary.json")));
        Assert.Equal("synthetic", summary.RootElement.GetProperty("dataset").GetString());
        Assert.Equal(2, summary.RootElement.GetProperty("world_size").GetInt32());
    }

    [Fact]
    public async Task TwoWorkersStartedByHandTrainWithoutAnAgentRankZeroServingTheStore()
    {
        using var temp = new TempDirectory();
        var output = temp.Combine("run");
        var results = await RunTwoRanksAsync(["worker", "--preset", "quick", "--dataset", "synthetic", "--limit-train", "256", "--limit-valid", "64", "--bs", "32", "--output", output], temp);

        foreach (var result in results)
        {
            Assert.True(result.ExitCode == 0, result.ToString());
            Assert.DoesNotContain("agent:", result.StandardOutput + result.StandardError);
        }
        // No agent serves the store, so rank 0 did: without it rank 1 could not have joined.
        Assert.Contains("rank 1 done: accuracy", results[1].StandardOutput);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "summary.json")));
        Assert.Equal(2, summary.RootElement.GetProperty("world_size").GetInt32());
    }

    [Fact]
    public async Task AnExplicitCifar10WithoutTheDataFailsOnEveryRankWithTheFix()
    {
        using var temp = new TempDirectory();
        var results = await RunTwoRanksAsync(["train", "--preset", "quick", "--dataset", "cifar10", "--output", temp.Combine("run")], temp);

        foreach (var result in results)
        {
            Assert.True(result.ExitCode == 2, result.ToString());
            Assert.Contains("cifar-10-binary.tar.gz", result.StandardError);
        }
        Assert.Contains("rank 0 could not load the data", results[1].StandardError);
    }
}
