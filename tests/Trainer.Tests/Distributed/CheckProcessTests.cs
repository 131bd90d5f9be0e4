namespace Trainer.Tests.Distributed;

/// <summary><c>Trainer check</c> as real processes with torchrun's variables, over loopback.</summary>
public class CheckProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static Dictionary<string, string?> Contract(int rank, int worldSize, int port) => new()
    {
        ["RANK"] = $"{rank}", ["LOCAL_RANK"] = $"{rank}", ["WORLD_SIZE"] = $"{worldSize}", ["LOCAL_WORLD_SIZE"] = $"{worldSize}",
        ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}", ["TORCHELASTIC_RUN_ID"] = "check-test", ["TRAINER_JOIN_TIMEOUT"] = "60",
    };

    [Fact]
    public async Task ThreeProcessesJoinAndEachPrintsItsSummary()
    {
        var port = FreeTcpPort.Next();
        var ranks = Enumerable.Range(0, 3).Select(rank => TrainerProcess.Start(["check"], Contract(rank, 3, port))).ToList();
        try
        {
            var results = await Task.WhenAll(ranks.Select(rank => rank.WaitAsync(Patience)));

            for (var rank = 0; rank < 3; rank++)
            {
                var result = results[rank];
                Assert.True(result.ExitCode == 0, result.ToString());
                var line = Assert.Single(result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.Matches($@"^check: rank {rank}/3 \(local {rank}/3\) run check-test joined 127\.0\.0\.1:{port} in \d+\.\d\d s, world agrees; all-reduce of 16 MiB verified \(cpu\), bus bandwidth \d+\.\d\d GB/s$", line.TrimEnd('\r'));
            }
        }
        finally
        {
            ranks.ForEach(rank => rank.Dispose());
        }
    }

    [Fact]
    public async Task WithoutAWorldItChecksAloneOnTheGivenPort()
    {
        var port = FreeTcpPort.Next();
        using var alone = TrainerProcess.Start(["check"], new Dictionary<string, string?> { ["MASTER_PORT"] = $"{port}" });

        var result = await alone.WaitAsync(Patience);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith($"check: rank 0/1 (local 0/1) run none joined 127.0.0.1:{port} in ", result.StandardOutput);
    }

    [Fact]
    public async Task ABadContractExitsWithCode2AndNamesTheVariable()
    {
        var environment = Contract(5, 3, FreeTcpPort.Next());
        using var bad = TrainerProcess.Start(["check"], environment);

        var result = await bad.WaitAsync(Patience);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("RANK=5 is out of range for WORLD_SIZE=3", result.StandardError);
        Assert.Empty(result.StandardOutput);
    }

    [Fact]
    public async Task AMissingRankExitsWithCode1AtTheJoinTimeout()
    {
        var environment = Contract(0, 2, FreeTcpPort.Next());
        environment["TRAINER_JOIN_TIMEOUT"] = "1";
        using var lonely = TrainerProcess.Start(["check"], environment);

        var result = await lonely.WaitAsync(Patience);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("rank(s) 1 of WORLD_SIZE=2 never arrived", result.StandardError);
        Assert.Empty(result.StandardOutput);
    }
}
