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
            var (session, summary) = await JoinAndSummarizeAsync(contract, options, logger, stopping.Token);
            await using (session)
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

    /// <summary>
    /// Joins the rendezvous and returns the session with this rank's summary line. Further checks of the joined
    /// world (such as an all-reduce of a test tensor) belong here, run on the session and extend the line.
    /// </summary>
    internal static async Task<(RendezvousSession Session, string Summary)> JoinAndSummarizeAsync(DistributedContract contract, RendezvousOptions options,
        ILogger logger, CancellationToken cancellationToken)
    {
        var session = await Rendezvous.JoinAsync(contract, options, logger, cancellationToken);
        try
        {
            return (session, Summary(session));
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    internal static string Summary(RendezvousSession session)
    {
        var contract = session.Contract;
        return $"check: rank {contract.Rank}/{contract.WorldSize} (local {contract.LocalRank}/{contract.LocalWorldSize}) run {contract.RunId} " +
               $"joined {contract.MasterAddr}:{contract.MasterPort} in {session.JoinTime.TotalSeconds:0.00} s, world agrees";
    }

    /// <summary>
    /// Logging and telemetry from the service defaults; logs go to stderr so stdout carries only the summary.
    /// Config files are not watched: one inotify instance per rank process adds up against the per-user limit.
    /// </summary>
    private static IHost CreateHost()
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection([new("hostBuilder:reloadConfigOnChange", "false")]);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Configuration = configuration });
        builder.AddServiceDefaults();
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(lifetime => lifetime.SuppressStatusMessages = true);
        return builder.Build();
    }
}
