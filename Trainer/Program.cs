using System.CommandLine;
using System.Runtime.InteropServices;
using Trainer.Commands;

// A bundle without libtorch (scripts/gpu-check.sh --pack) runs on the machine's PyTorch, found on LD_LIBRARY_PATH:
// TorchSharp then needs its glue library loaded by path, as its own message for a Python install of PyTorch says.
var glue = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
if (File.Exists(glue) && !File.Exists(Path.Combine(AppContext.BaseDirectory, "libtorch_cpu.so")))
    NativeLibrary.TryLoad(glue, out _);

var root = new RootCommand("Data-parallel trainer for .NET: Wide ResNet on CIFAR-10, one process per rank, launched by the torchrun environment contract.");
root.Subcommands.Add(CheckCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(TrainCommand.CreateWorker());
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
