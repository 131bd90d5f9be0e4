using System.Text.Json;
using Trainer.Commands;

namespace Trainer.Elastic;

/// <summary>How a restart round ended, as every agent reads it from the store key "agent/{round}/over" (the first writer wins).</summary>
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

    /// <summary>Rank <paramref name="rank"/>'s agent stopped answering: the group cannot be restarted without it.</summary>
    public static RoundOutcome Lost(int rank, string why) => new(RoundOutcomeKind.Lost, rank, ExitCodes.Failed, $"rank {rank}'s agent was lost ({why})");

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this);

    public static RoundOutcome Parse(byte[] bytes)
    {
        try
        {
            return JsonSerializer.Deserialize<RoundOutcome>(bytes) ?? throw new JsonException("null");
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
}
