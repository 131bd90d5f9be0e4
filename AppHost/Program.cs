using AppHost;

var builder = DistributedApplication.CreateBuilder(args);

var launch = TrainerLaunch.FromConfiguration(builder.Configuration, repositoryRoot: Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")));
Console.WriteLine($"Launching {launch.Describe()}");
var runSecret = builder.AddParameter("run-secret",
    new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true);

var rank0 = builder.AddTrainer(rank: 0, launch, runSecret)
    .WithEndpoint(name: "master", scheme: "tcp", isProxied: false)
    .WithMasterReachableHealthCheck();
var master = rank0.GetEndpoint("master");
rank0.WithMaster(master);

for (var rank = 1; rank < launch.LocalWorldSize; rank++)
{
    builder.AddTrainer(rank, launch, runSecret)
        .WithMaster(master)
        .WaitFor(rank0);
}

builder.Build().Run();
