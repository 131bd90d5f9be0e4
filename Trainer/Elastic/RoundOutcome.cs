using System.Text.Json;
using Trainer.Runtime;

namespace Trainer.Elastic;

/// <summary>
/// How a restart round ended, as every agent reads it from the store: "agent/{round}/over" (the first writer wins),
/// settled into "agent/{round}/verdict" when the first failure was only a consequence of another rank's (see
/// ElasticAgent.SettleAsync). Each agent also reports its own worker's outcome under "agent/{round}/exit/{rank}".
/// </summary>
internal sealed record RoundOutcome(RoundOutcomeKind Kind, int Rank, int ExitCode, string Message)
{
    /// <summary>Every worker of the round exited with 0.</summary>
    public static RoundOutcome Done(int worldSize) => new(RoundOutcomeKind.Done, -1, ExitCodes.Success, $"all {worldSize} ranks finished");

    /// <summary>Rank <paramref name="rank"/>'s worker exited with <paramref name="exitCode"/>; final when a restart cannot help.</summary>
    public static RoundOutcome Failed(int rank, int exitCode, bool interrupted = false)
    {
        var final = interrupted || ExitCodes.IsFinal(exitCode);
        var code = interrupted ? ExitCodes.Interrupted : exitCode;
        var what = interrupted ? "was interrupted (Ctrl+C or SIGTERM)" : $"exited with {ExitCodes.Describe(exitCode)}";
        return new(final ? RoundOutcomeKind.Final : RoundOutcomeKind.Failed, rank, code, $"rank {rank}'s worker {what}");
    }

    /// <summary>Rank <paramref name="rank"/>'s worker hung (see Watchdog.HangWatch): restartable, like a crash.</summary>
    public static RoundOutcome Hung(int rank, int pid, string host, string what) =>
        new(RoundOutcomeKind.Failed, rank, ExitCodes.Failed, $"rank {rank}'s worker (pid {pid} on {host}) hung: {what}");

    /// <summary>Rank <paramref name="rank"/>'s worker was stopped by its agent because another rank ended the round: not a cause.</summary>
    public static RoundOutcome Stopped(int rank) => new(RoundOutcomeKind.Stopped, rank, ExitCodes.Failed, $"rank {rank}'s worker was stopped by its agent");

    /// <summary>Rank <paramref name="rank"/>'s agent stopped answering: the group cannot be restarted without it.</summary>
    public static RoundOutcome Lost(int rank, string why) => new(RoundOutcomeKind.Lost, rank, ExitCodes.Failed, $"rank {rank}'s agent was lost ({why})");

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, TrainerJson.Default.RoundOutcome);

    public static RoundOutcome Parse(byte[] bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, TrainerJson.Default.RoundOutcome) ?? throw new JsonException("null");
        }
        catch (JsonException)
        {
            return new(RoundOutcomeKind.Lost, -1, ExitCodes.Failed, $"the round's outcome in the store is not valid ({bytes.Length} bytes)");
        }
    }
}

internal enum RoundOutcomeKind
{
    Done,

    /// <summary>A failure a restart may cure.</summary>
    Failed,

    /// <summary>A failure every restart would meet again, or a stop the user asked for.</summary>
    Final,

    Lost,

    /// <summary>Only in a rank's own report: its worker did not end the round, its agent stopped it.</summary>
    Stopped,
}
