using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Distributed;
using Trainer.Distributed.Store;
using Trainer.Telemetry;

namespace Trainer.Runtime;

/// <summary>
/// One rank's life, the same for <c>Trainer train</c>, <c>Trainer check</c> and the benchmarks: the environment read
/// once (a bad value is <see cref="ExitCodes.BadConfiguration"/> before anything starts), the generic host, the world
/// joined, the body, then the teardown: the world left on success and aborted otherwise, so the peers fail at once
/// instead of waiting out a timeout. Every failure of the run's machinery is one line on stderr and its exit code.
/// </summary>
internal static class WorkerHost
{
    /// <summary>What the body gets: who it is, its world (null when it trains alone), and the host's services.</summary>
    public sealed record Rank(DistributedSettings Settings, DistributedWorld? World, IServiceProvider Services, ILogger Logger)
    {
        public DistributedContract Contract => Settings.Contract;
    }

    /// <param name="command">The command's name: the logger's category, the run span's trainer.command, and the start
    /// of each error line unless <paramref name="errorPrefix"/> says otherwise.</param>
    /// <param name="configure">Adjusts the settings read from the environment (a device's backend, a benchmark's timeouts); may throw <see cref="ContractException"/>.</param>
    /// <param name="join">Whether to join a world: always for check and the collective benchmarks, for train only with WORLD_SIZE &gt; 1.</param>
    /// <param name="host">False runs without the generic host (no telemetry, no console logger): the benchmarks.</param>
    public static async Task<int> RunAsync(string command, Func<Rank, CancellationToken, Task<int>> body, TextWriter error, CancellationToken cancellationToken,
        Func<DistributedSettings, DistributedSettings>? configure = null, Func<DistributedContract, bool>? join = null, bool host = true,
        string? errorPrefix = null)
    {
        var prefix = errorPrefix ?? command;
        DistributedSettings settings;
        try
        {
            settings = DistributedSettings.FromEnvironment();
            if (configure is not null)
                settings = configure(settings);
        }
        catch (ContractException e)
        {
            await error.WriteLineAsync($"{prefix}: {e.Message}");
            return ExitCodes.BadConfiguration;
        }

        using var generic = host ? TrainerHost.Create() : null;
        if (generic is not null)
            await generic.StartAsync(cancellationToken);
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken,
            generic?.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping ?? CancellationToken.None);
        var logger = generic?.Logger($"Trainer.{char.ToUpperInvariant(command[0])}{command[1..]}") ?? NullLogger.Instance;
        var services = generic?.Services ?? EmptyServices.Instance;
        var contract = settings.Contract;
        TrainerTelemetry.SetIdentity(contract);
        using var runSpan = TrainerTelemetry.StartRun(contract, command);
        using var logScope = logger.BeginScope(TrainerTelemetry.Identity);
        DistributedWorld? world = null;
        var exitCode = ExitCodes.Failed;
        try
        {
            if (join?.Invoke(contract) ?? contract.WorldSize > 1)
                world = await DistributedWorld.InitAsync(contract, settings.Rendezvous, settings.Group, logger, stopping.Token);
            return exitCode = await body(new Rank(settings, world, services, logger), stopping.Token);
        }
        catch (ContractException e)
        {
            await error.WriteLineAsync($"{prefix}: rank {contract.Rank}: {e.Message}");
            return exitCode = ExitCodes.BadConfiguration;
        }
        catch (Exception e) when (IsMachineryFailure(e))
        {
            // The connection to the store is lost when rank 0 (or its agent, which serves the store) went away.
            var lostStore = e is StoreConnectionLostException && !contract.IsMaster ? " (rank 0, or its agent, serves the store: it is probably gone)" : "";
            logger.LogError("rank {Rank}: {Message}{LostStore}", contract.Rank, e.Message, lostStore);
            await error.WriteLineAsync($"{prefix}: rank {contract.Rank}: {e.Message}{lostStore}");
            return exitCode = ExitCodes.Failed;
        }
        finally
        {
            runSpan?.SetTag("process.exit.code", exitCode).SetStatus(exitCode is ExitCodes.Success or ExitCodes.Interrupted ? ActivityStatusCode.Ok : ActivityStatusCode.Error);
            if (world is not null)
            {
                if (exitCode == ExitCodes.Success) await world.DisposeAsync();
                else await world.AbortAsync();
            }
            if (generic is not null)
                await generic.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>A lost rank, a broken connection, a timeout: what a restart of the group may cure.</summary>
    public static bool IsMachineryFailure(Exception e) =>
        e is DistributedException or TimeoutException or StoreException or SocketException or StoreConnectionLostException or IOException;

    private sealed class EmptyServices : IServiceProvider
    {
        public static readonly EmptyServices Instance = new();

        public object? GetService(Type serviceType) => null;
    }
}
