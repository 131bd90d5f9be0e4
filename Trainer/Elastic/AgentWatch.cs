using Trainer.Runtime;

namespace Trainer.Elastic;

/// <summary>
/// In a worker: ends the worker the moment its agent is gone. The agent holds the write end of the worker's stdin
/// and never writes; when the agent dies, however it dies, the kernel closes that end and the read here returns
/// end-of-file. A worker without its agent would otherwise train on as an orphan nobody can restart or stop.
/// </summary>
internal static class AgentWatch
{
    public static void Start()
    {
        // `Trainer worker` started by hand (to train without an agent, e.g. under a debugger): nothing to watch.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ElasticAgent.AgentPidVariable)) || !Console.IsInputRedirected) return;
        var thread = new Thread(() =>
        {
            try
            {
                using var stdin = Console.OpenStandardInput();
                var buffer = new byte[256];
                while (stdin.Read(buffer) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
            Console.Error.WriteLine($"error: the elastic agent (pid {Environment.GetEnvironmentVariable(ElasticAgent.AgentPidVariable)}) is gone; this worker exits.");
            Posix.ExitNow(ExitCodes.Failed);
        })
        {
            IsBackground = true,
            Name = "agent watch",
        };
        thread.Start();
    }
}
