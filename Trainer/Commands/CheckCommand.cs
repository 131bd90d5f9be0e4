using System.CommandLine;
using System.Net.Sockets;
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
        DistributedContract contract;
        RendezvousOptions options;
        try
        {
            contract = DistributedContract.FromEnvironment();
            options = RendezvousOptions.FromEnvironment();
        }
        catch (ContractException ex)
        {
            await error.WriteLineAsync($"check: {ex.Message}");
            return 2;
        }

        using var host = CreateHost();
        await host.StartAsync(cancellationToken);
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(
            cancellationToken, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Trainer.Check");
        try
        {
            await using var session = await JoinAndReportAsync(contract, options, logger, output, stopping.Token);
            return 0;
        }
        catch (ContractException ex)
        {
            await error.WriteLineAsync($"check: rank {contract.Rank}: {ex.Message}");
            return 2;
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or SocketException or StoreException)
        {
            await error.WriteLineAsync($"check: rank {contract.Rank}: {ex.Message}");
            return 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Joins and prints this rank's summary line; the caller owns (and disposes) the session.</summary>
    internal static async Task<RendezvousSession> JoinAndReportAsync(DistributedContract contract, RendezvousOptions options, ILogger logger, TextWriter output,
        CancellationToken cancellationToken)
    {
        var session = await Rendezvous.JoinAsync(contract, options, logger, cancellationToken);
        await output.WriteLineAsync(Summary(session));
        await output.FlushAsync(cancellationToken);
        return session;
    }

    internal static string Summary(RendezvousSession session)
    {
        var contract = session.Contract;
        return $"check: rank {contract.Rank}/{contract.WorldSize} (local {contract.LocalRank}/{contract.LocalWorldSize}) run {contract.RunId} " +
               $"joined {contract.MasterAddr}:{contract.MasterPort} in {session.JoinTime.TotalSeconds:0.00} s, world agrees";
    }

    /// <summary>Logging and telemetry from the service defaults; logs go to stderr so stdout carries only the summary.</summary>
    private static IHost CreateHost()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.AddServiceDefaults();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(lifetime => lifetime.SuppressStatusMessages = true);
        return builder.Build();
    }
}
