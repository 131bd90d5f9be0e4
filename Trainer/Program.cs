using System.CommandLine;
using Trainer.Commands;

var root = new RootCommand("Data-parallel trainer for .NET: Wide ResNet on CIFAR-10, one process per rank, launched by the torchrun environment contract.");
root.Subcommands.Add(CheckCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(DevicesCommand.Create());
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // A value that does not parse is bad configuration too: one line each, exit code 2.
    foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
    var command = parse.CommandResult.Command == root ? "Trainer" : $"Trainer {parse.CommandResult.Command.Name}";
    Console.Error.WriteLine($"Run '{command} --help' for the options.");
    return 2;
}
return await parse.InvokeAsync();
