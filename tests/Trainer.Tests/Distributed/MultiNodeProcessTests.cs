using System.Text.Json;

namespace Trainer.Tests.Distributed;

/// <summary>
/// Two "nodes" of two ranks each, as `torchrun --nnodes 2 --nproc-per-node 2` (or two app hosts with Nodes=2)
/// would start them: RANK = GROUP_RANK × LOCAL_WORLD_SIZE + LOCAL_RANK. On loopback, so both nodes are this machine.
/// </summary>
public class MultiNodeProcessTests
{
    private const int Nodes = 2;
    private const int RanksPerNode = 2;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private static Dictionary<string, string?> Contract(int node, int localRank, int port, string runId) => new()
    {
        ["RANK"] = $"{node * RanksPerNode + localRank}", ["LOCAL_RANK"] = $"{localRank}", ["GROUP_RANK"] = $"{node}",
        ["LOCAL_WORLD_SIZE"] = $"{RanksPerNode}", ["WORLD_SIZE"] = $"{Nodes * RanksPerNode}",
        ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}", ["TORCHELASTIC_RUN_ID"] = runId,
        ["TRAINER_JOIN_TIMEOUT"] = "60", ["TRAINER_THREADS"] = "1",
    };

    /// <summary>Starts node 1 before node 0 (a node may come up before the one that hosts the store) and waits for all four.</summary>
    private static async Task<TrainerResult[]> RunTwoNodesAsync(string[] args, string runId)
    {
        var port = FreeTcpPort.Next();
        var order = new[] { (1, 0), (1, 1), (0, 0), (0, 1) };
        var processes = order.Select(p => TrainerProcess.Start(args, Contract(p.Item1, p.Item2, port, runId))).ToList();
        try
        {
            var results = await Task.WhenAll(processes.Select(p => p.WaitAsync(Patience)));
            return [.. Enumerable.Range(0, Nodes * RanksPerNode).Select(rank => results[Array.IndexOf(order, (rank / RanksPerNode, rank % RanksPerNode))])];
        }
        finally
        {
            processes.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task Four_ranks_on_two_nodes_join_one_world_and_all_reduce()
    {
        var results = await RunTwoNodesAsync(["check"], "two-nodes");

        for (var rank = 0; rank < results.Length; rank++)
        {
            Assert.True(results[rank].ExitCode == 0, results[rank].ToString());
            Assert.Matches($@"^check: rank {rank}/4 \(local {rank % RanksPerNode}/2\) run two-nodes joined 127\.0\.0\.1:\d+ in \d+\.\d\d s, world agrees; all-reduce of 16 MiB verified \(cpu\)",
                results[rank].StandardOutput);
        }
    }

    [Fact]
    public async Task Four_ranks_on_two_nodes_train_one_model_and_only_global_rank_0_writes_the_summary()
    {
        using var dir = new TempDirectory();
        var output = dir.Combine("run");

        var results = await RunTwoNodesAsync(
            ["train", "--dataset", "synthetic", "--width", "1", "--epochs", "1", "--limit-train", "256", "--limit-valid", "128", "--bs", "32", "--output", output, "--device", "cpu"],
            "two-nodes-train");

        for (var rank = 0; rank < results.Length; rank++)
        {
            Assert.True(results[rank].ExitCode == 0, results[rank].ToString());
            Assert.Contains($"distributed: rank {rank} of 4 (cpu), 64 training and 32 validation samples per rank", results[rank].StandardOutput);
        }
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "summary.json")));
        Assert.Equal(4, summary.RootElement.GetProperty("world_size").GetInt32());
        Assert.Equal(1, summary.RootElement.GetProperty("epochs").GetInt32());
        Assert.StartsWith("done: ", results[0].StandardOutput.Split('\n').Last(line => line.Length > 0));
        Assert.Contains("rank 3 done: ", results[3].StandardOutput);
    }
}
