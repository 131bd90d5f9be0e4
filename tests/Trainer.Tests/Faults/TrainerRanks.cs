using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Trainer.Distributed;

namespace Trainer.Tests.Faults;

/// <summary>
/// The ranks of one real run: WORLD_SIZE `Trainer train` processes (each an elastic agent with its worker) over
/// loopback with torchrun's variables, a run secret and one torch thread each. Their output is collected line by
/// line, with the time since the start, while they run, so a test can act at a moment of the run (kill a worker
/// mid-epoch) and time what follows.
/// </summary>
internal sealed partial class TrainerRanks : IDisposable
{
    public const string Secret = "fault-tests-secret";

    private static readonly string[] ClearedVariables =
    [
        .. DistributedContract.Variables, "TRAINER_JOIN_TIMEOUT", "OTEL_EXPORTER_OTLP_ENDPOINT", "TRAINER_FAULT", "TRAINER_AGENT_PID",
        "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_MAX_RESTARTS", "TRAINER_BACKEND", "TRAINER_COLLECTIVE_TIMEOUT",
    ];

    private TrainerRanks(RankProcess[] ranks, int port, Stopwatch clock)
    {
        Ranks = ranks;
        Port = port;
        Clock = clock;
    }

    public RankProcess[] Ranks { get; }

    public RankProcess this[int rank] => Ranks[rank];

    /// <summary>Rank 0's MASTER_PORT.</summary>
    public int Port { get; }

    /// <summary>Started with the processes: every line's time is measured on it.</summary>
    public Stopwatch Clock { get; }

    /// <summary>The arguments of a tiny run: k = 1, synthetic images, 16 per batch, a progress line every step; <paramref name="more"/> (option, value pairs) add or replace.</summary>
    public static List<string> TinyRun(string output, int trainImages = 256, int epochs = 2, params string[] more)
    {
        var options = new Dictionary<string, string>
        {
            ["--preset"] = "quick", ["--dataset"] = "synthetic", ["--limit-train"] = $"{trainImages}", ["--limit-valid"] = "64", ["--bs"] = "16",
            ["--epochs"] = $"{epochs}", ["--output"] = output, ["--log-every"] = "1",
        };
        for (var i = 0; i + 1 < more.Length; i += 2)
            options[more[i]] = more[i + 1];
        return ["train", .. options.SelectMany(o => new[] { o.Key, o.Value })];
    }

    public static TrainerRanks Start(int worldSize, IReadOnlyList<string> args, IReadOnlyDictionary<string, string?>? environment = null,
        Func<int, IReadOnlyDictionary<string, string?>>? rankEnvironment = null)
    {
        var port = FreeTcpPort.Next();
        var clock = Stopwatch.StartNew();
        var ranks = new RankProcess[worldSize];
        try
        {
            for (var rank = 0; rank < worldSize; rank++)
            {
                var variables = new Dictionary<string, string?>
                {
                    ["RANK"] = $"{rank}", ["LOCAL_RANK"] = $"{rank}", ["WORLD_SIZE"] = $"{worldSize}", ["LOCAL_WORLD_SIZE"] = $"{worldSize}",
                    ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}", ["TORCHELASTIC_RUN_ID"] = "fault-tests",
                    ["TRAINER_RUN_SECRET"] = Secret, ["TRAINER_THREADS"] = "1", ["TRAINER_JOIN_TIMEOUT"] = "120",
                };
                foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
                    variables[name] = value;
                foreach (var (name, value) in rankEnvironment?.Invoke(rank) ?? new Dictionary<string, string?>())
                    variables[name] = value;
                ranks[rank] = RankProcess.Start(rank, args, variables, clock);
            }
        }
        catch
        {
            foreach (var started in ranks.Where(r => r is not null))
                started.Dispose();
            throw;
        }
        return new TrainerRanks(ranks, port, clock);
    }

    /// <summary>Waits for every rank to exit; past <paramref name="timeout"/> kills them all and fails with their output.</summary>
    public async Task<int[]> WaitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            return await Task.WhenAll(Ranks.Select(r => r.Exited.WaitAsync(deadline.Token)));
        }
        catch (OperationCanceledException)
        {
            Dispose();
            throw new TimeoutException($"the run did not end within {timeout.TotalSeconds} s and was killed.\n{this}");
        }
    }

    public override string ToString() => string.Join("\n", Ranks.Select(r => r.ToString()));

    public void Dispose()
    {
        foreach (var rank in Ranks)
            rank.Dispose();
    }

    internal static void SetUpEnvironment(ProcessStartInfo start, IReadOnlyDictionary<string, string?> variables)
    {
        foreach (var name in ClearedVariables)
            start.Environment.Remove(name);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in variables)
            if (value is null)
                start.Environment.Remove(name);
            else
                start.Environment[name] = value;
    }

    [GeneratedRegex(@"round (\d+): worker pid (\d+) started")]
    internal static partial Regex WorkerStarted();
}

/// <summary>One rank's agent process and its output so far.</summary>
internal sealed class RankProcess : IDisposable
{
    private readonly Process _process;
    private readonly Stopwatch _clock;
    private readonly List<(TimeSpan At, string Line)> _lines = [];
    private readonly Task _readers;

    private RankProcess(int rank, Process process, Stopwatch clock)
    {
        Rank = rank;
        _process = process;
        _clock = clock;
        _readers = Task.WhenAll(Read(process.StandardOutput), Read(process.StandardError));
        Exited = ExitAsync();
    }

    public int Rank { get; }

    public int Pid => _process.Id;

    /// <summary>The exit code, once the process has exited and its output is read.</summary>
    public Task<int> Exited { get; }

    /// <summary>When the process exited, on the run's clock.</summary>
    public TimeSpan? ExitedAt { get; private set; }

    /// <summary>stdout and stderr, interleaved as they arrived.</summary>
    public string Output
    {
        get
        {
            lock (_lines) return string.Join("\n", _lines.Select(l => l.Line));
        }
    }

    public IReadOnlyList<(TimeSpan At, string Line)> Lines
    {
        get
        {
            lock (_lines) return [.. _lines];
        }
    }

    public static RankProcess Start(int rank, IEnumerable<string> args, IReadOnlyDictionary<string, string?> variables, Stopwatch clock)
    {
        var start = TrainerProcess.StartInfo(args);
        TrainerRanks.SetUpEnvironment(start, variables);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the trainer");
        process.StandardInput.Close();
        return new RankProcess(rank, process, clock);
    }

    /// <summary>The first line (so far or to come) that contains <paramref name="text"/>, with its time.</summary>
    public async Task<(TimeSpan At, string Line)> WaitForLineAsync(string text, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            lock (_lines)
            {
                foreach (var line in _lines)
                    if (line.Line.Contains(text, StringComparison.Ordinal))
                        return line;
            }
            if (Exited.IsCompleted)
                throw new InvalidOperationException($"rank {Rank} exited without printing '{text}'.\n{this}");
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"rank {Rank} did not print '{text}' within {timeout.TotalSeconds} s.\n{this}");
            await Task.Delay(20);
        }
    }

    /// <summary>The pid of the worker the agent started for restart round <paramref name="round"/>.</summary>
    public async Task<int> WorkerPidAsync(int round, TimeSpan timeout)
    {
        var (_, line) = await WaitForLineAsync($"round {round}: worker pid ", timeout);
        return int.Parse(TrainerRanks.WorkerStarted().Match(line).Groups[2].Value);
    }

    public int Count(string text)
    {
        lock (_lines) return _lines.Count(l => l.Line.Contains(text, StringComparison.Ordinal));
    }

    /// <summary>SIGKILL for the agent alone (its worker notices and exits by itself).</summary>
    public void KillAgent() => _process.Kill(entireProcessTree: false);

    public override string ToString() => $"--- rank {Rank} (pid {Pid}, exit {(_process.HasExited ? _process.ExitCode : "running")}) ---\n{Output}";

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }

    private async Task Read(StreamReader reader)
    {
        while (await reader.ReadLineAsync() is { } line)
            lock (_lines) _lines.Add((_clock.Elapsed, line));
    }

    private async Task<int> ExitAsync()
    {
        await _process.WaitForExitAsync();
        ExitedAt = _clock.Elapsed;
        await _readers;
        return _process.ExitCode;
    }
}
