using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Distributed;

namespace Bench;

/// <summary>init_process_group(init_method="env://") for a benchmark rank: the Trainer's own rendezvous and CPU ring.</summary>
internal static class BenchWorld
{
    public static async Task<DistributedWorld> JoinAsync(string mode)
    {
        var contract = DistributedContract.FromEnvironment();
        if (contract.WorldSize < 2)
            throw new ContractException($"{mode} needs WORLD_SIZE of 2 or more (got {contract.WorldSize}); start one process per rank with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set.");
        var options = DistributedWorld.OptionsFromEnvironment() with { Backend = Backend.Cpu, Timeout = TimeSpan.FromMinutes(2) };
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        return await DistributedWorld.InitAsync(contract, new RendezvousOptions { JoinTimeout = TimeSpan.FromMinutes(1) }, options, NullLogger.Instance, limit.Token);
    }

    /// <summary>Runs a collective benchmark body; a lost rank or a bad contract is one line on stderr and exit code 1 or 2.</summary>
    public static async Task<int> RunAsync(string mode, Func<DistributedWorld, int> body)
    {
        DistributedWorld world;
        try
        {
            world = await JoinAsync(mode);
        }
        catch (ContractException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        var exitCode = 1;
        try
        {
            exitCode = body(world);
            return exitCode;
        }
        catch (DistributedException e)
        {
            Console.Error.WriteLine($"rank {world.Contract.Rank}: {e.GetType().Name}: {e.Message}");
            return exitCode = 1;
        }
        finally
        {
            if (exitCode == 0) await world.DisposeAsync();
            else await world.AbortAsync();
        }
    }
}
