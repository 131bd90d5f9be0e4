using System.Diagnostics;
using System.Text;
using Trainer.Distributed;

namespace Trainer.Tests;

public sealed record TrainerResult(int ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>
/// Runs the built Trainer (Trainer.dll, copied next to the tests by the project reference) as a real process:
/// <c>dotnet Trainer.dll args…</c>. The inherited torchrun/TRAINER_* variables and the OTLP endpoint are cleared so
/// only <c>environment</c> defines the contract; a null value there removes a variable.
/// </summary>
public sealed class TrainerProcess : IDisposable
{
    private static readonly string[] ClearedVariables =
        [.. DistributedContract.Variables, "TRAINER_JOIN_TIMEOUT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

    private readonly Process _process;
    private readonly Task<string> _standardOutput;
    private readonly Task<string> _standardError;

    private TrainerProcess(Process process)
    {
        _process = process;
        _standardOutput = process.StandardOutput.ReadToEndAsync();
        _standardError = process.StandardError.ReadToEndAsync();
    }

    public static string TrainerDll => Path.Combine(AppContext.BaseDirectory, "Trainer.dll");

    public int Id => _process.Id;

    /// <summary>`dotnet Trainer.dll ARGS` from the test output folder, with every stream redirected (stdin closed after start).</summary>
    internal static ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(TrainerDll);
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        return start;
    }

    public static TrainerProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = StartInfo(args);
        foreach (var name in ClearedVariables)
            start.Environment.Remove(name);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null)
                start.Environment.Remove(name);
            else
                start.Environment[name] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName} {TrainerDll}");
        process.StandardInput.Close();
        return new TrainerProcess(process);
    }

    /// <summary>Waits for the exit; past <paramref name="timeout"/> kills the process tree and throws with what it printed.</summary>
    public async Task<TrainerResult> WaitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException($"Trainer (pid {Id}) did not exit within {timeout.TotalSeconds} s and was killed.\n{await CollectAsync(-1)}");
        }
        return await CollectAsync(_process.ExitCode);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private async Task<TrainerResult> CollectAsync(int exitCode) =>
        new(exitCode, await _standardOutput, await _standardError);

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Exited in between.
        }
    }
}
