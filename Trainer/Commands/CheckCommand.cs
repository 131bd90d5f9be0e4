using Trainer.Runtime;
using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Trainer.Distributed;
using Trainer.Distributed.Store;

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

    internal static async Task<int> RunAsync(TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        DistributedSettings settings;
        try
        {
            settings = DistributedSettings.FromEnvironment();
        }
        catch (ContractException ex)
        {
            await error.WriteLineAsync($"check: {ex.Message}");
            return 2;
        }

        using var host = TrainerHost.Create();
        await host.StartAsync(cancellationToken);
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(
            cancellationToken, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Trainer.Check");
        var (contract, options, groupOptions) = settings;
        try
        {
            var (world, summary) = await JoinAndSummarizeAsync(contract, options, groupOptions, logger, stopping.Token);
            await using (world)
            {
                await output.WriteLineAsync(summary);
                await output.FlushAsync(stopping.Token);
            }
            return 0;
        }
        catch (ContractException ex)
        {
            await error.WriteLineAsync($"check: rank {contract.Rank}: {ex.Message}");
            return 2;
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or SocketException or StoreException or DistributedException)
        {
            await error.WriteLineAsync($"check: rank {contract.Rank}: {ex.Message}");
            return 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Joins the rendezvous and the process group, all-reduces a test tensor and verifies the sum on this rank, and
    /// returns the world with this rank's summary line.
    /// </summary>
    internal static async Task<(DistributedWorld World, string Summary)> JoinAndSummarizeAsync(DistributedContract contract, RendezvousOptions options,
        ProcessGroupOptions groupOptions, ILogger logger, CancellationToken cancellationToken)
    {
        var world = await DistributedWorld.InitAsync(contract, options, groupOptions, logger, cancellationToken);
        try
        {
            var allReduce = AllReduceCheck.Run(world.Group);
            return (world, $"{Summary(world.Session)}; {allReduce}");
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }
    }

    internal static string Summary(RendezvousSession session)
    {
        var contract = session.Contract;
        return $"check: rank {contract.Rank}/{contract.WorldSize} (local {contract.LocalRank}/{contract.LocalWorldSize}) run {contract.RunId} " +
               $"joined {contract.MasterAddr}:{contract.MasterPort} in {session.JoinTime.TotalSeconds:0.00} s, world agrees";
    }
}
