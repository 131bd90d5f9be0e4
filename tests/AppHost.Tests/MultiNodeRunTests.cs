using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace AppHost.Tests;

public class MultiNodeRunTests
{
    static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Two_app_hosts_as_two_nodes_of_two_trainers_form_one_world_of_four()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var port = FreePort();
        string[] Node(int rank) =>
        [
            "--Nodes", "2", "--NodeRank", $"{rank}", "--Trainers", "2", "--Command", "check", "--MasterAddr", "127.0.0.1",
            "--MasterPort", $"{port}", "--RunId", "two-app-hosts", "--Parameters:run-secret", "same-secret-on-both-nodes",
        ];

        // Node 1 first: its trainers wait for node 0's store.
        await using var node1 = await AppHostRun.StartAsync(Node(1), timeout.Token);
        await using var node0 = await AppHostRun.StartAsync(Node(0), timeout.Token);

        var runs = new[] { node0, node0, node1, node1 };
        var exitCodes = await Task.WhenAll(Enumerable.Range(0, 4).Select(rank => runs[rank].WaitForExitAsync($"trainer-{rank}", timeout.Token)));
        await Task.Delay(500, timeout.Token);
        for (var rank = 0; rank < 4; rank++)
        {
            var logs = runs[rank].Logs($"trainer-{rank}");
            Assert.True(exitCodes[rank] == 0, $"trainer-{rank} exited with {exitCodes[rank]}:\n{string.Join('\n', logs)}");
            Assert.Contains(logs, line => Regex.IsMatch(line, $@"check: rank {rank}/4 \(local {rank % 2}/2\) run two-app-hosts joined 127\.0\.0\.1:{port} .*world agrees"));
        }
    }
}
