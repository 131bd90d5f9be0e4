using Trainer.Distributed;

namespace Trainer.Watchdog;

/// <summary>
/// The worker's side of the hang watch: where training is (phase, step, collectives) goes into the progress file
/// its agent created (TRAINER_PROGRESS_FILE), and a heartbeat thread shows the process itself still runs. Without
/// an agent (tests, bench, a by-hand worker) every call here does nothing.
/// </summary>
internal static class WorkerProgress
{
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);
    private static ProgressFile? s_file;

    /// <summary>Tells the progress file of every collective; null without an agent.</summary>
    public static ICollectiveObserver? Observer { get; private set; }

    /// <summary>Opens the agent's progress file, if there is one, and starts the heartbeat.</summary>
    public static void StartFromEnvironment()
    {
        if (s_file is not null || Environment.GetEnvironmentVariable(ProgressFile.Variable) is not { Length: > 0 } path || !File.Exists(path))
            return;
        var file = ProgressFile.Open(path);
        s_file = file;
        Observer = new FileObserver(file);
        var heartbeat = new Thread(() =>
        {
            while (true)
            {
                file.Beat();
                Thread.Sleep(HeartbeatInterval);
            }
        })
        { IsBackground = true, Name = "progress heartbeat" };
        heartbeat.Start();
    }

    public static void Enter(TrainingPhase phase) => s_file?.Enter(phase);

    /// <summary>Step <paramref name="step"/> (the schedule position, from 0) of <paramref name="epoch"/> begins its forward pass.</summary>
    public static void StepStarted(int epoch, int step) => s_file?.StepStarted(epoch, step);

    /// <summary>The optimizer step is done; <paramref name="step"/> steps are done in all.</summary>
    public static void StepEnded(int step) => s_file?.StepEnded(step);

    private sealed class FileObserver(ProgressFile file) : ICollectiveObserver
    {
        public void Issued(long sequence, CollectiveKind kind, long bytes) => file.Issued(sequence, kind, bytes);

        public void Completed(long sequence, bool succeeded) => file.Completed(sequence, succeeded);
    }
}
