using System.CommandLine;

namespace Trainer.Commands;

internal static class CheckCommand
{
    public static Command Create()
    {
        var command = new Command("check", "Join the rendezvous, verify the world, and exit.");
        command.SetAction(_ => 0);
        return command;
    }
}
