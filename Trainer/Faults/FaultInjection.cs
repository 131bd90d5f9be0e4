using System.Globalization;
using Trainer.Distributed;
using Trainer.Runtime;

namespace Trainer.Faults;

/// <summary>
/// Real faults on purpose, for the reliability tests and for rehearsing a deployment: TRAINER_FAULT names where a
/// rank dies (SIGKILL, exactly as if the OOM killer or an operator had struck), where its disk fills up or where its
/// loss turns NaN, e.g. <c>point=allreduce,rank=1,at=5</c> (rank 1 dies before the gradient all-reduce of step 5),
/// several separated by ';'. <c>do=</c> changes what happens there: <c>kill</c> (the default), <c>stop</c> (SIGSTOP:
/// the whole process freezes, as on a stuck GPU kernel or a frozen NFS mount), <c>hang</c> (this thread blocks
/// forever while the rest of the process lives on, as in a deadlock) or <c>sleep</c> for <c>for=S</c> seconds (a slow
/// but honest step). A fault strikes in restart round 0 unless <c>round=N</c> or <c>round=any</c> says otherwise.
/// Unset (always, in production), nothing here does anything.
/// </summary>
internal static class FaultInjection
{
    public const string Variable = "TRAINER_FAULT";

    private static IReadOnlyList<Fault> s_faults = [];

    /// <summary>Arms the faults of <paramref name="spec"/> that target this rank in this round.</summary>
    /// <exception cref="ContractException">The spec does not parse.</exception>
    public static void Configure(string? spec, int rank, int round) =>
        s_faults = [.. Parse(spec).Where(f => f.Rank == rank && (f.Round is null || f.Round == round))];

    public static void ConfigureFromEnvironment(DistributedContract contract) =>
        Configure(Environment.GetEnvironmentVariable(Variable), contract.Rank, contract.RestartCount);

    public static bool Any => s_faults.Count > 0;

    /// <summary>True when a fault is armed at <paramref name="point"/> for count <paramref name="at"/>.</summary>
    public static bool Armed(FaultPoint point, int at = 1) => s_faults.Any(f => f.Point == point && f.At == at);

    /// <summary>Strikes here (dies, freezes, blocks or sleeps, as the fault says) when a fault is armed at this point.</summary>
    public static void StrikeIfArmed(FaultPoint point, int at = 1)
    {
        if (s_faults.FirstOrDefault(f => f.Point == point && f.At == at) is not { } fault)
            return;
        var where = $"{point.ToString().ToLowerInvariant()} {at}";
        switch (fault.Action)
        {
            case FaultAction.Stop:
                Say($"stopping this rank (SIGSTOP, pid {Environment.ProcessId}) at {where}");
                Posix.StopThisProcess();
                break;
            case FaultAction.Hang:
                Say($"blocking this thread of rank pid {Environment.ProcessId} forever at {where}");
                Thread.Sleep(Timeout.Infinite);
                break;
            case FaultAction.Sleep:
                Say($"sleeping {fault.Seconds} s at {where}");
                Thread.Sleep(TimeSpan.FromSeconds(fault.Seconds));
                break;
            default:
                Say($"killing this rank (pid {Environment.ProcessId}) at {where}");
                Posix.Signal(Environment.ProcessId, Posix.SigKill);
                Thread.Sleep(Timeout.Infinite);
                break;
        }
    }

    private static void Say(string what)
    {
        Console.Error.WriteLine($"fault injection ({Variable}): {what}");
        Console.Error.Flush();
    }

    internal static IReadOnlyList<Fault> Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) return [];
        var faults = new List<Fault>();
        foreach (var text in spec.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            FaultPoint? point = null;
            int? rank = null, round = 0;
            var at = 1;
            var action = FaultAction.Kill;
            var seconds = 0;
            foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var (name, value) = pair.IndexOf('=') is var eq and > 0 ? (pair[..eq], pair[(eq + 1)..]) : (pair, "");
                switch (name)
                {
                    case "point" when Enum.TryParse<FaultPoint>(value, ignoreCase: true, out var p) && Enum.IsDefined(p):
                        point = p;
                        break;
                    case "rank":
                        rank = Count(value, text);
                        break;
                    case "at":
                        at = Count(value, text);
                        break;
                    case "round":
                        round = value == "any" ? null : Count(value, text);
                        break;
                    case "do" when Enum.TryParse<FaultAction>(value, ignoreCase: true, out var a) && Enum.IsDefined(a) && !int.TryParse(value, out _):
                        action = a;
                        break;
                    case "for":
                        seconds = Count(value, text);
                        break;
                    default:
                        throw Bad(text, $"'{pair}' is not one of point=…, rank=N, at=N, round=N|any, do=kill|stop|hang|sleep, for=SECONDS");
                }
            }
            if (point is null) throw Bad(text, "point= is missing");
            if (rank is null) throw Bad(text, "rank= is missing");
            if (action == FaultAction.Sleep && seconds == 0) throw Bad(text, "do=sleep needs for=SECONDS");
            faults.Add(new Fault(point.Value, rank.Value, at, round, action, seconds));
        }
        return faults;
    }

    private static int Count(string value, string text) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Bad(text, $"'{value}' is not a whole number of 0 or more");

    private static ContractException Bad(string text, string why) => new(
        $"{Variable}='{text}': {why}. Example: point=allreduce,rank=1,at=5 (points: {string.Join(", ", Enum.GetNames<FaultPoint>().Select(n => n.ToLowerInvariant()))}); unset it for a normal run.");
}

internal sealed record Fault(FaultPoint Point, int Rank, int At, int? Round, FaultAction Action = FaultAction.Kill, int Seconds = 0);

/// <summary>What a fault does where it strikes.</summary>
internal enum FaultAction
{
    Kill,
    Stop,
    Hang,
    Sleep,
}
