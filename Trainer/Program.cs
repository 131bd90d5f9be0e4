using System.CommandLine;
using Trainer.Commands;

var root = new RootCommand("Data-parallel trainer for .NET: Wide ResNet on CIFAR-10, one process per rank, launched by the torchrun environment contract.");
root.Subcommands.Add(CheckCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
return await root.Parse(args).InvokeAsync();
