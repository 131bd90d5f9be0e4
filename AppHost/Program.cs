using AppHost;

var builder = DistributedApplication.CreateBuilder(args);

TrainerLaunch launch;
try
{
    launch = TrainerLaunch.FromConfiguration(builder.Configuration, repositoryRoot: Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")),
        publishing: builder.ExecutionContext.IsPublishMode);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
Console.WriteLine($"Launching {launch.Describe()}");
if (launch.Layout.LoopbackWarning() is { } warning) Console.WriteLine($"warning: {warning}");
var runSecret = builder.AddParameter("run-secret",
    new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true);

// Our training Dashboard (Dashboard/): live curves per rank and the history of runs.
var dashboard = builder.AddTrainingDashboard(Path.GetFullPath(builder.Configuration["DashboardDatabase"] ?? Path.Combine(builder.AppHostDirectory, "..", "runs", "dashboard.db")));
var run = launch.Command == "train" ? builder.AddTrainingRun(launch, dashboard) : null;

var layout = launch.Layout;
IResourceBuilder<ProjectResource> Trainer(int localRank)
{
    var trainer = builder.AddTrainer(localRank, launch, runSecret)
        .WithDashboard(dashboard, launch.RunId, layout.GlobalRank(localRank));
    return run is null ? trainer : trainer.WithParentRelationship(run);
}

if (layout.HostsStore)
{
    // A manifest must name the port in advance, as must the other nodes of a multi-node run.
    var rank0 = Trainer(localRank: 0)
        .WithMasterEndpoint(layout.MasterPort ?? (builder.ExecutionContext.IsPublishMode ? NodeLayout.DefaultMasterPort : null))
        .WithMasterReachableHealthCheck(layout.MasterAddr);
    var master = rank0.GetEndpoint("master");
    rank0.WithMaster(master, layout.MasterAddr);

    for (var localRank = 1; localRank < layout.LocalWorldSize; localRank++)
        Trainer(localRank).WithMaster(master, layout.MasterAddr).WaitFor(rank0);
}
else
{
    for (var localRank = 0; localRank < layout.LocalWorldSize; localRank++)
        Trainer(localRank).WithRemoteMaster(layout);
}

builder.Build().Run();
return 0;
