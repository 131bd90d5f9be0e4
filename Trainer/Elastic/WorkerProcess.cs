using System.Diagnostics;
using System.Reflection;
using Trainer.Runtime;

namespace Trainer.Elastic;

/// <summary>
/// One worker: this same program, started again as `Trainer worker` with the agent's options, that does the actual training. Its
/// stdout and stderr are the agent's (a terminal keeps its progress bar); its stdin is a pipe from the agent that
/// is never written to, so the worker sees end-of-file, and exits, the moment the agent dies (see <see cref="AgentWatch"/>).
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;

    private WorkerProcess(Process process)
    {
        _process = process;
        Id = process.Id;
        Exited = WaitAsync(process);
    }

    public int Id { get; }

    /// <summary>Completes with the exit code (128 + signal when a signal ended it).</summary>
    public Task<int> Exited { get; }

    public bool HasExited => Exited.IsCompleted;

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="arguments"/> and extra <paramref name="environment"/>,
    /// on the malloc <see cref="NativeAllocator.Worker"/> chooses.
    /// </summary>
    public static WorkerProcess Start(string program, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardInput = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        if (NativeAllocator.Worker.Preload is { } library && !environment.ContainsKey(NativeAllocator.PreloadVariable))
            start.Environment[NativeAllocator.PreloadVariable] = library;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start the worker {program}");
        return new WorkerProcess(process);
    }

    /// <summary>
    /// This process's own command line with its subcommand (the first argument Main saw) replaced by
    /// <paramref name="subcommand"/>: `Trainer train --epochs 3` starts `Trainer worker --epochs 3`.
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) ThisCommandLineAs(string subcommand)
    {
        var (program, arguments) = ThisCommandLine();
        var mainArguments = Environment.GetCommandLineArgs().Length - 1;
        var at = arguments.Count - mainArguments;
        if (mainArguments == 0 || at < 0)
            throw new InvalidOperationException($"this process's command line ({string.Join(' ', arguments)}) has no subcommand to replace by '{subcommand}'");
        return (program, [.. arguments.Take(at), subcommand, .. arguments.Skip(at + 1)]);
    }

    /// <summary>
    /// This process's own command line: the executable and its arguments exactly as given (from /proc/self/cmdline on
    /// Linux, so `dotnet exec --depsfile …` survives).
    /// </summary>
    public static (string Program, IReadOnlyList<string> Arguments) ThisCommandLine()
    {
        var program = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        const string cmdline = "/proc/self/cmdline";
        if (File.Exists(cmdline))
            return (program, [.. File.ReadAllText(cmdline).TrimEnd('\0').Split('\0').Skip(1)]);
        IEnumerable<string> arguments = Environment.GetCommandLineArgs().Skip(1);
        if (Path.GetFileNameWithoutExtension(program).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            arguments = arguments.Prepend(Assembly.GetEntryAssembly()!.Location);
        return (program, [.. arguments]);
    }

    /// <summary>SIGTERM, then SIGKILL for the whole process tree when it has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (HasExited) return;
        Posix.Signal(Id, Posix.SigTerm);
        try
        {
            await Exited.WaitAsync(grace);
        }
        catch (TimeoutException)
        {
            Kill();
            await Exited;
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

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

    private static async Task<int> WaitAsync(Process process)
    {
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
