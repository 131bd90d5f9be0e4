using AppHost;

var builder = DistributedApplication.CreateBuilder(args);

var launch = TrainerLaunch.FromConfiguration(builder.Configuration, repositoryRoot: Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")));
Console.WriteLine($"Launching {launch.Describe()}");
var runSecret = builder.AddParameter("run-secret",
    new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true);

// Our training Dashboard (Dashboard/): live curves per rank and the history of runs.
var dashboard = builder.AddTrainingDashboard(Path.GetFullPath(builder.Configuration["DashboardDatabase"] ?? Path.Combine(builder.AppHostDirectory, "..", "runs", "dashboard.db")));
var run = launch.Command == "train" ? builder.AddTrainingRun(launch, dashboard) : null;

var rank0 = builder.AddTrainer(rank: 0, launch, runSecret)
    .WithEndpoint(name: "master", scheme: "tcp", isProxied: false)
    .WithMasterReachableHealthCheck();
var master = rank0.GetEndpoint("master");
rank0.WithMaster(master);
rank0.WithDashboard(dashboard, launch.RunId, rank: 0);
if (run is not null) rank0.WithParentRelationship(run);

for (var rank = 1; rank < launch.LocalWorldSize; rank++)
{
    var trainer = builder.AddTrainer(rank, launch, runSecret)
        .WithMaster(master)
        .WaitFor(rank0)
        .WithDashboard(dashboard, launch.RunId, rank);
    if (run is not null) trainer.WithParentRelationship(run);
}

builder.Build().Run();
