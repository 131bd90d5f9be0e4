using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AppHost;

/// <summary>The Trainer resources and the torchrun environment contract they are launched with.</summary>
public static class TrainerResourceExtensions
{
    /// <summary>
    /// Adds `trainer-{RANK}` for local rank <paramref name="localRank"/> of this node, running `Trainer {command}` with
    /// RANK, LOCAL_RANK, GROUP_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE (<see cref="NodeLayout.RankVariables"/>) and the run's identity.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddTrainer(this IDistributedApplicationBuilder builder, int localRank,
        TrainerLaunch launch, IResourceBuilder<ParameterResource> runSecret)
    {
        var trainer = builder.AddProject<Projects.Trainer>($"trainer-{launch.Layout.GlobalRank(localRank)}")
            .WithArgs([.. launch.TrainerArgs]);
        foreach (var (name, value) in launch.Layout.RankVariables(localRank))
            trainer.WithEnvironment(name, value);
        trainer
            .WithEnvironment(LaunchContract.RunId, launch.RunId)
            .WithEnvironment(LaunchContract.RestartCount, "0")
            .WithEnvironment(TrainerAllocator.Variable, TrainerAllocator.Tunables(Environment.GetEnvironmentVariable(TrainerAllocator.Variable)))
            .WithEnvironment(LaunchContract.RunSecret, runSecret);
        if (launch.ThreadsPerRank is { } threads)
            trainer.WithEnvironment(LaunchContract.Threads, threads.ToString());
        return trainer;
    }

    /// <summary>
    /// rank 0's store endpoint: not proxied, so the port is rank 0's own listener. <paramref name="port"/> fixes it
    /// (other nodes, and a published manifest, must know it in advance); null lets Aspire pick a free one.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithMasterEndpoint(this IResourceBuilder<ProjectResource> rank0, int? port) =>
        rank0.WithEndpoint(name: "master", scheme: "tcp", port: port, targetPort: port, isProxied: false);

    /// <summary>
    /// Points a trainer at rank 0's store on this node: MASTER_PORT is the master endpoint's port; MASTER_ADDR is
    /// <paramref name="masterAddr"/> (127.0.0.1 on one machine, node 0's network address with several), and in a
    /// published manifest rank 0's host name, as every trainer becomes a container of its own there.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithMaster(this IResourceBuilder<ProjectResource> trainer, EndpointReference master,
        string masterAddr = NodeLayout.LoopbackAddr)
    {
        if (trainer.ApplicationBuilder.ExecutionContext.IsPublishMode)
            trainer.WithEnvironment(LaunchContract.MasterAddr, master.Property(EndpointProperty.Host));
        else
            trainer.WithEnvironment(LaunchContract.MasterAddr, masterAddr);
        return trainer.WithEnvironment(LaunchContract.MasterPort, master.Property(EndpointProperty.Port));
    }

    /// <summary>Points a trainer on node 1, 2, … at the store that node 0 serves at MasterAddr:MasterPort.</summary>
    public static IResourceBuilder<ProjectResource> WithRemoteMaster(this IResourceBuilder<ProjectResource> trainer, NodeLayout layout) =>
        trainer
            .WithEnvironment(LaunchContract.MasterAddr, layout.MasterAddr)
            .WithEnvironment(LaunchContract.MasterPort, (layout.MasterPort ?? NodeLayout.DefaultMasterPort).ToString());

    /// <summary>Healthy once rank 0's store accepts TCP connections at <paramref name="host"/>, so the other ranks start only then.</summary>
    public static IResourceBuilder<ProjectResource> WithMasterReachableHealthCheck(this IResourceBuilder<ProjectResource> rank0,
        string host = NodeLayout.LoopbackAddr)
    {
        var name = $"{rank0.Resource.Name}-master-listening";
        var master = rank0.GetEndpoint("master");
        rank0.ApplicationBuilder.Services.AddHealthChecks().AddAsyncCheck(name, async cancellationToken =>
        {
            if (!master.IsAllocated) return HealthCheckResult.Unhealthy("master port not allocated yet");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(host, master.Port, cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (SocketException e)
            {
                return HealthCheckResult.Unhealthy($"rank 0 is not listening on {master.Port} yet: {e.SocketErrorCode}");
            }
        });
        return rank0.WithHealthCheck(name);
    }
}
