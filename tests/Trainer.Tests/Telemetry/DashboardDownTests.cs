namespace Trainer.Tests.Telemetry;

public sealed class DashboardDownTests
{
    [Fact]
    public async Task A_trainer_whose_dashboard_is_down_trains_to_the_end_and_says_how_many_points_were_dropped()
    {
        using var output = new TempDirectory();
        var deadPort = FreeTcpPort.Next(); // nothing listens there
        using var trainer = TrainerProcess.Start(
            ["train", "--preset", "quick", "--dataset", "synthetic", "--limit-train", "64", "--limit-valid", "16", "--bs", "16", "--width", "1",
             "--epochs", "1", "--threads", "1", "--output", output.Path],
            new Dictionary<string, string?> { ["services__dashboard__http__0"] = $"http://127.0.0.1:{deadPort}" });

        var result = await trainer.WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(File.Exists(Path.Combine(output.Path, "summary.json")), result.ToString());
        // Every point (4 steps, the epoch, the end) was dropped and counted; none was lost silently.
        Assert.Contains("The training Dashboard missed 6 of 6 points from this rank", result.StandardError);
    }
}
