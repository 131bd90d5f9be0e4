namespace Trainer.Runtime;

/// <summary>
/// What a trainer's exit code means, and whether the elastic agent may cure it by restarting the group: only
/// failures of the run's machinery (a lost rank, a broken connection, a crash) are retried; a problem that a
/// restart would meet again (bad configuration, divergence, a full disk) or a stop the user asked for is final.
/// </summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>A rank was lost, a connection broke, a timeout passed: retried up to --max-restarts times.</summary>
    public const int Failed = 1;

    /// <summary>A value in the options, the environment or the data is wrong: the message names it and the fix.</summary>
    public const int BadConfiguration = 2;

    /// <summary>The loss or the averaged gradients became NaN or infinite: every rank stops at the same step.</summary>
    public const int Diverged = 3;

    /// <summary>A checkpoint or summary could not be written (disk full, read-only folder); the previous checkpoint is kept.</summary>
    public const int OutputFailed = 4;

    /// <summary>Stopped on request ("Stop after this epoch"), Ctrl+C or SIGTERM: never restarted.</summary>
    public const int Interrupted = 130;

    /// <summary>True when restarting the group cannot help.</summary>
    public static bool IsFinal(int exitCode) => exitCode is BadConfiguration or Diverged or OutputFailed or Interrupted;

    /// <summary>"exit code 1 (failed)", "exit code 137 (killed by SIGKILL)", …</summary>
    public static string Describe(int exitCode) => exitCode switch
    {
        Success => "exit code 0 (success)",
        Failed => "exit code 1 (failed)",
        BadConfiguration => "exit code 2 (bad configuration)",
        Diverged => "exit code 3 (training diverged)",
        OutputFailed => "exit code 4 (could not write its output)",
        Interrupted => "exit code 130 (interrupted)",
        > 128 and < 128 + 65 => $"exit code {exitCode} (killed by {SignalName(exitCode - 128)})",
        _ => $"exit code {exitCode}",
    };

    private static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => $"signal {signal}",
    };
}
