using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace AppHost.Tests;

/// <summary>The app model of one node of a multi-node run: which trainers it starts and what they are told (nothing is started).</summary>
public class MultiNodeModelTests
{
    private static readonly string[] TwoNodes =
        ["--Nodes", "2", "--Trainers", "2", "--MasterAddr", "10.0.0.4", "--MasterPort", "29511", "--RunId", "multi", "--Parameters:run-secret", "s3cret"];

    private static async Task<IReadOnlyList<ProjectResource>> TrainersAsync(string[] args)
    {
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(args);
        return [.. builder.Resources.OfType<ProjectResource>().Where(p => p.Name.StartsWith("trainer-", StringComparison.Ordinal)).OrderBy(p => p.Name)];
    }

    /// <summary>The environment as the app model holds it, before anything runs: strings, parameters and endpoint references.</summary>
    private static async Task<Dictionary<string, object>> EnvironmentAsync(ProjectResource trainer)
    {
        var context = new EnvironmentCallbackContext(new DistributedApplicationExecutionContext(DistributedApplicationOperation.Run), trainer, []);
        foreach (var callback in trainer.Annotations.OfType<EnvironmentCallbackAnnotation>())
            await callback.Callback(context);
        return context.EnvironmentVariables;
    }

    [Fact]
    public async Task Node_1_starts_global_ranks_2_and_3_pointed_at_node_0s_store()
    {
        var trainers = await TrainersAsync([.. TwoNodes, "--NodeRank", "1"]);

        Assert.Equal(["trainer-2", "trainer-3"], trainers.Select(t => t.Name));
        for (var localRank = 0; localRank < 2; localRank++)
        {
            var env = await EnvironmentAsync(trainers[localRank]);
            Assert.Equal($"{2 + localRank}", env["RANK"]);
            Assert.Equal($"{localRank}", env["LOCAL_RANK"]);
            Assert.Equal("1", env["GROUP_RANK"]);
            Assert.Equal("4", env["WORLD_SIZE"]);
            Assert.Equal("2", env["LOCAL_WORLD_SIZE"]);
            Assert.Equal("10.0.0.4", env["MASTER_ADDR"]);
            Assert.Equal("29511", env["MASTER_PORT"]);
            Assert.Equal("multi", env["TORCHELASTIC_RUN_ID"]);
            var secret = Assert.IsType<ParameterResource>(env["TRAINER_RUN_SECRET"]);
            Assert.Equal("s3cret", await secret.GetValueAsync(CancellationToken.None));
            Assert.Empty(trainers[localRank].Annotations.OfType<EndpointAnnotation>());
        }
    }

    [Fact]
    public async Task Node_0_serves_the_store_on_the_fixed_port_at_the_address_other_nodes_use()
    {
        var trainers = await TrainersAsync([.. TwoNodes, "--NodeRank", "0"]);

        Assert.Equal(["trainer-0", "trainer-1"], trainers.Select(t => t.Name));
        var master = Assert.Single(trainers[0].Annotations.OfType<EndpointAnnotation>(), e => e.Name == "master");
        Assert.Equal((29511, 29511, false), (master.Port, master.TargetPort, master.IsProxied));
        Assert.Empty(trainers[1].Annotations.OfType<EndpointAnnotation>());
        for (var rank = 0; rank < 2; rank++)
        {
            var env = await EnvironmentAsync(trainers[rank]);
            Assert.Equal($"{rank}", env["RANK"]);
            Assert.Equal("0", env["GROUP_RANK"]);
            Assert.Equal("4", env["WORLD_SIZE"]);
            Assert.Equal("10.0.0.4", env["MASTER_ADDR"]);
            // The port of trainer-0's master endpoint, resolved when it starts: 29511 here.
            var port = Assert.IsType<EndpointReferenceExpression>(env["MASTER_PORT"]);
            Assert.Equal(("trainer-0", "master", EndpointProperty.Port), (port.Endpoint.Resource.Name, port.Endpoint.EndpointName, port.Property));
        }
    }
}
