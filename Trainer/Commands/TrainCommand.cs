using System.CommandLine;

namespace Trainer.Commands;

internal static class TrainCommand
{
    public static Command Create()
    {
        var command = new Command("train", "Train the model.");
        command.SetAction(_ => 0);
        return command;
    }
}
