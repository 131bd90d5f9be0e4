using Trainer.Runtime;
using System.CommandLine;
using Trainer.Distributed;

namespace Trainer.Commands;

/// <summary>
/// <c>Trainer check</c>: reads the environment contract, joins the rendezvous and prints one summary line per
/// rank on stdout. Exit code 0 = the world is complete and agrees, 2 = bad configuration, 1 = the join failed.
/// </summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Join the rendezvous, verify the world, and exit.");
        command.SetAction((_, cancellationToken) => RunAsync(Console.Out, Console.Error, cancellationToken));
        return command;
    }

    internal static Task<int> RunAsync(TextWriter output, TextWriter error, CancellationToken cancellationToken) =>
        WorkerHost.RunAsync("check", async (rank, stopping) =>
        {
            var summary = $"{Summary(rank.World!.Session)}; {AllReduceCheck.Run(rank.World.Group)}";
            await output.WriteLineAsync(summary);
            await output.FlushAsync(stopping);
            return ExitCodes.Success;
        }, error, cancellationToken, join: _ => true);

    internal static string Summary(RendezvousSession session)
    {
        var contract = session.Contract;
        return $"check: rank {contract.Rank}/{contract.WorldSize} (local {contract.LocalRank}/{contract.LocalWorldSize}) run {contract.RunId} " +
               $"joined {contract.MasterAddr}:{contract.MasterPort} in {session.JoinTime.TotalSeconds:0.00} s, world agrees";
    }
}
