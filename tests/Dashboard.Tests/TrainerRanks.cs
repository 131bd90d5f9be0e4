using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Dashboard.Tests;

/// <summary>
/// A world of real trainer processes (Trainer.dll next to the tests) on loopback, reporting to a Dashboard through
/// services__dashboard__http__0, the variable the app host's WithReference(dashboard) sets.
/// </summary>
public sealed class TrainerRanks : IDisposable
{
    private static readonly string[] Inherited =
    [
        "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
        "TORCHELASTIC_RESTART_COUNT", "TRAINER_RUN_SECRET", "TRAINER_THREADS", "OTEL_EXPORTER_OTLP_ENDPOINT",
    ];

    private readonly List<(Process Process, StringBuilder Output)> _ranks = [];

    public TrainerRanks(int worldSize, string runId, Uri dashboard, IEnumerable<string> trainArgs)
    {
        var port = FreePort();
        for (var rank = 0; rank < worldSize; rank++)
        {
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = AppContext.BaseDirectory,
            };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Trainer.dll"));
            start.ArgumentList.Add("train");
            foreach (var arg in trainArgs) start.ArgumentList.Add(arg);
            foreach (var name in Inherited) start.Environment.Remove(name);
            start.Environment["RANK"] = rank.ToString();
            start.Environment["WORLD_SIZE"] = worldSize.ToString();
            start.Environment["MASTER_ADDR"] = "127.0.0.1";
            start.Environment["MASTER_PORT"] = port.ToString();
            start.Environment["TORCHELASTIC_RUN_ID"] = runId;
            start.Environment["TRAINER_THREADS"] = "1";
            start.Environment["services__dashboard__http__0"] = dashboard.ToString().TrimEnd('/');
            var process = new Process { StartInfo = start };
            var output = new StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _ranks.Add((process, output));
        }
    }

    /// <summary>Waits for every rank to exit and returns the exit codes; past the timeout kills them and throws with their output.</summary>
    public async Task<int[]> WaitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            foreach (var (process, _) in _ranks) await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Dispose();
            throw new TimeoutException($"the trainers did not finish within {timeout.TotalSeconds} s:\n{Output}");
        }
        return [.. _ranks.Select(r => r.Process.ExitCode)];
    }

    public string Output => string.Join("\n", _ranks.Select((r, rank) => { lock (r.Output) return $"--- rank {rank} ---\n{r.Output}"; }));

    public void Dispose()
    {
        foreach (var (process, _) in _ranks)
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
