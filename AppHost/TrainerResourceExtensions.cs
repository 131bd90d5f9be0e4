using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AppHost;

/// <summary>The Trainer resources and the torchrun environment contract they are launched with.</summary>
public static class TrainerResourceExtensions
{
    /// <summary>Adds `trainer-{rank}` running `Trainer {command}` with RANK, LOCAL_RANK, WORLD_SIZE and the run's identity.</summary>
    public static IResourceBuilder<ProjectResource> AddTrainer(this IDistributedApplicationBuilder builder, int rank,
        TrainerLaunch launch, IResourceBuilder<ParameterResource> runSecret) =>
        builder.AddProject<Projects.Trainer>($"trainer-{rank}")
            .WithArgs([.. launch.TrainerArgs])
            .WithEnvironment("RANK", rank.ToString())
            .WithEnvironment("LOCAL_RANK", rank.ToString())
            .WithEnvironment("GROUP_RANK", "0")
            .WithEnvironment("WORLD_SIZE", launch.LocalWorldSize.ToString())
            .WithEnvironment("LOCAL_WORLD_SIZE", launch.LocalWorldSize.ToString())
            .WithEnvironment("TORCHELASTIC_RUN_ID", launch.RunId)
            .WithEnvironment("TORCHELASTIC_RESTART_COUNT", "0")
            .WithEnvironment("TRAINER_THREADS", launch.ThreadsPerRank.ToString())
            .WithEnvironment(TrainerAllocator.Variable, TrainerAllocator.Tunables(Environment.GetEnvironmentVariable(TrainerAllocator.Variable)))
            .WithEnvironment("TRAINER_RUN_SECRET", runSecret);

    /// <summary>Points a trainer at rank 0's store. The endpoint is not proxied, so the port is rank 0's own listener.</summary>
    public static IResourceBuilder<ProjectResource> WithMaster(this IResourceBuilder<ProjectResource> trainer, EndpointReference master) =>
        trainer
            .WithEnvironment("MASTER_ADDR", "127.0.0.1")
            .WithEnvironment("MASTER_PORT", master.Property(EndpointProperty.Port));

    /// <summary>Healthy once rank 0's store accepts TCP connections, so the other ranks start only then.</summary>
    public static IResourceBuilder<ProjectResource> WithMasterReachableHealthCheck(this IResourceBuilder<ProjectResource> rank0)
    {
        var name = $"{rank0.Resource.Name}-master-listening";
        var master = rank0.GetEndpoint("master");
        rank0.ApplicationBuilder.Services.AddHealthChecks().AddAsyncCheck(name, async cancellationToken =>
        {
            if (!master.IsAllocated) return HealthCheckResult.Unhealthy("master port not allocated yet");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", master.Port, cancellationToken);
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
