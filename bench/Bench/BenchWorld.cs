using Trainer.Distributed;
using Trainer.Runtime;

namespace Bench;

/// <summary>init_process_group(init_method="env://") for a benchmark rank: the Trainer's own rendezvous and CPU ring, through its WorkerHost.</summary>
internal static class BenchWorld
{
    /// <summary>Runs a collective benchmark body; a lost rank or a bad contract is one line on stderr and exit code 1 or 2.</summary>
    public static Task<int> RunAsync(string mode, Func<DistributedWorld, int> body) =>
        WorkerHost.RunAsync(mode, (rank, _) => Task.FromResult(body(rank.World!)), Console.Error, CancellationToken.None,
            configure: settings => settings.Contract.WorldSize < 2
                ? throw new ContractException($"{mode} needs WORLD_SIZE of 2 or more (got {settings.Contract.WorldSize}); start one process per rank with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set.")
                : settings with
                {
                    Rendezvous = settings.Rendezvous with { JoinTimeout = TimeSpan.FromMinutes(1) },
                    Group = settings.Group with { Backend = Backend.Cpu, Timeout = TimeSpan.FromMinutes(2) },
                },
            join: _ => true, host: false);
}
