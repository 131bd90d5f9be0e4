using System.CommandLine;
using Bench;

// Benchmark ranks for bench/run, the mirror of bench/pytorch_peer.py: each mode prints JSON lines on stdout
// (collective modes: rank 0 only). Collective modes join through the torchrun environment contract
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), exactly as the Trainer does.
var root = new RootCommand("Benchmark ranks: the .NET side of bench/run (see bench/pytorch_peer.py for the PyTorch side).");
root.Subcommands.Add(AllReduceBenchmark.Create());
root.Subcommands.Add(TrainBenchmark.Create(distributed: false));
root.Subcommands.Add(TrainBenchmark.Create(distributed: true));
root.Subcommands.Add(DataBenchmark.Create());
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
    return 2;
}
return await parse.InvokeAsync();
