using System.Text.RegularExpressions;

namespace AppHost.Tests;

public class CheckRunTests
{
    [Fact]
    public async Task ThreeTrainersRendezvousAgreeOnTheRunAndFinish()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        await using var run = await AppHostRun.StartAsync(["--Trainers", "3", "--Command", "check"], timeout.Token);

        var names = Enumerable.Range(0, 3).Select(rank => $"trainer-{rank}").ToArray();
        var exitCodes = await Task.WhenAll(names.Select(name => run.WaitForExitAsync(name, timeout.Token)));
        await Task.Delay(500, timeout.Token); // let the last log lines arrive

        var runIds = new HashSet<string>();
        foreach (var (name, rank) in names.Select((n, r) => (n, r)))
        {
            var logs = run.Logs(name);
            Assert.True(exitCodes[rank] == 0, $"{name} exited with {exitCodes[rank]}:\n{string.Join('\n', logs)}");
            var summary = logs.Select(line => Regex.Match(line, $@"check: rank {rank}/3 .*run (\S+)")).FirstOrDefault(m => m.Success);
            Assert.True(summary is not null, $"{name} printed no summary line:\n{string.Join('\n', logs)}");
            runIds.Add(summary.Groups[1].Value);
        }
        Assert.Single(runIds);
    }
}
