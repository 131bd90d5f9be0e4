using Trainer.Runtime;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Trainer.Commands;
using Trainer.Distributed;
using Trainer.Elastic;

namespace Trainer.Tests.Elastic;

/// <summary>
/// Real agents of a 2-rank world over a real store, in this process; their workers are shell scripts, so each test
/// decides exactly when and how every worker ends.
/// </summary>
public sealed class ElasticAgentTests
{
    private static readonly ElasticOptions Options = new() { MaxRestarts = 1, StopGrace = TimeSpan.FromSeconds(2), LeaveTimeout = TimeSpan.FromSeconds(5) };

    [Fact]
    public async Task A_cause_no_restart_can_cure_wins_over_a_consequence_that_was_reported_first()
    {
        // Rank 1's worker fails at once (a broken collective, exit 1); rank 0's, the cause, exits 4 a moment later.
        using var log = new TempDirectory();
        var exitCodes = await RunAsync(log.Path,
            worker0: "sleep 1.5; exit 4",
            worker1: "exit 1");

        Assert.True(exitCodes is [ExitCodes.OutputFailed, ExitCodes.OutputFailed], Logs.Text(exitCodes));
        Assert.Equal(["0 round 0", "1 round 0"], Rounds(log.Path));
    }

    [Fact]
    public async Task A_failure_a_restart_can_cure_restarts_every_rank_once()
    {
        // Rank 1's worker fails in round 0 only; rank 0's would have trained on and is stopped by its agent.
        using var log = new TempDirectory();
        var exitCodes = await RunAsync(log.Path,
            worker0: "[ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ] && exec sleep 60; exit 0",
            worker1: "[ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ] && exit 1; exit 0");

        Assert.True(exitCodes is [ExitCodes.Success, ExitCodes.Success], Logs.Text(exitCodes));
        Assert.Equal(["0 round 0", "0 round 1", "1 round 0", "1 round 1"], Rounds(log.Path));
    }

    private readonly AgentLog Logs = new();

    private async Task<int[]> RunAsync(string log, string worker0, string worker1)
    {
        var port = FreeTcpPort.Next();
        var rendezvous = new RendezvousOptions { JoinTimeout = TimeSpan.FromSeconds(30) };
        var agents = new[] { worker0, worker1 }.Select((script, rank) =>
        {
            var contract = new DistributedContract(rank, rank, 2, 2, 0, "127.0.0.1", port, "agent-tests", 0, null, 1);
            // Each worker notes its rank and round, then runs its script ($0 is "--resume" after a restart).
            var body = $"echo \"{rank} round $TORCHELASTIC_RESTART_COUNT\" >> '{Path.Combine(log, $"rank{rank}.log")}'; {script}";
            var metrics = new ElasticMetrics(rank);
            var agent = new ElasticAgent(contract, rendezvous, Options, "sh", ["-c", body], Logs, metrics);
            return Task.Run(async () =>
            {
                using (metrics)
                    return await agent.RunAsync(CancellationToken.None);
            });
        }).ToArray();
        return await Task.WhenAll(agents).WaitAsync(TimeSpan.FromMinutes(2));
    }

    private static string[] Rounds(string log) =>
        [.. Directory.GetFiles(log, "rank*.log").Order().SelectMany(File.ReadAllLines)];

    /// <summary>Both agents' log lines, for the failure message.</summary>
    private sealed class AgentLog : ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public string Text(int[] exitCodes) => $"exit codes {string.Join(", ", exitCodes)}:\n{string.Join("\n", _lines)}";

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
