using System.Text.Json;

namespace AppHost.Tests;

public class TrainRunTests
{
    [Fact]
    public async Task TwoTrainersTrainATinySyntheticRunToCompletionAndRankZeroWritesTheCheckpoint()
    {
        var output = Directory.CreateTempSubdirectory("apphost-train-");
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await using var run = await AppHostRun.StartAsync(
            [
                "--Trainers", "2", "--Dataset", "synthetic", "--Output", output.FullName,
                "--TrainerArgs", "--limit-train 512 --limit-valid 256 --bs 64",
            ], timeout.Token);

            string[] names = ["trainer-0", "trainer-1"];
            var exitCodes = await Task.WhenAll(names.Select(name => run.WaitForExitAsync(name, timeout.Token)));
            await Task.Delay(500, timeout.Token);
            for (var rank = 0; rank < names.Length; rank++)
                Assert.True(exitCodes[rank] == 0, $"{names[rank]} exited with {exitCodes[rank]}:\n{string.Join('\n', run.Logs(names[rank]))}");

            Assert.True(File.Exists(Path.Combine(output.FullName, "checkpoint.ckpt")), "rank 0 wrote no checkpoint");
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(output.FullName, "summary.json")));
            Assert.Equal(2, summary.RootElement.GetProperty("world_size").GetInt32());
            Assert.Equal("synthetic", summary.RootElement.GetProperty("dataset").GetString());
            Assert.Equal(1, summary.RootElement.GetProperty("epochs").GetInt32());
            Assert.Contains(run.Logs("trainer-1"), line => line.Contains("distributed: rank 1 of 2"));
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }
}
