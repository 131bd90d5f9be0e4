using AppHost;

var builder = DistributedApplication.CreateBuilder(args);

var launch = TrainerLaunch.FromConfiguration(builder.Configuration, repositoryRoot: Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")),
    publishing: builder.ExecutionContext.IsPublishMode);
Console.WriteLine($"Launching {launch.Describe()}");
if (launch.Layout.LoopbackWarning() is { } warning) Console.WriteLine($"warning: {warning}");
var runSecret = builder.AddParameter("run-secret",
    new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true);

var layout = launch.Layout;
if (layout.HostsStore)
{
    // A manifest must name the port in advance, as must the other nodes of a multi-node run.
    var rank0 = builder.AddTrainer(localRank: 0, launch, runSecret)
        .WithMasterEndpoint(layout.MasterPort ?? (builder.ExecutionContext.IsPublishMode ? NodeLayout.DefaultMasterPort : null))
        .WithMasterReachableHealthCheck(layout.MasterAddr);
    var master = rank0.GetEndpoint("master");
    rank0.WithMaster(master, layout.MasterAddr);

    for (var localRank = 1; localRank < layout.LocalWorldSize; localRank++)
    {
        builder.AddTrainer(localRank, launch, runSecret)
            .WithMaster(master, layout.MasterAddr)
            .WaitFor(rank0);
    }
}
else
{
    for (var localRank = 0; localRank < layout.LocalWorldSize; localRank++)
        builder.AddTrainer(localRank, launch, runSecret).WithRemoteMaster(layout);
}

builder.Build().Run();
