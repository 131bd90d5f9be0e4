using System.Diagnostics;

namespace Trainer.Watchdog;

/// <summary>
/// The agent's side of the hang watch: reads its worker's progress file twice a second and declares the worker
/// hung when (a) its heartbeat stopped for the hang timeout (the whole process is frozen: SIGSTOP, a stuck driver
/// call, swap death) in any phase, or (b) in a training step, past its first, nothing moved for the timeout, or for
/// three times the slowest step seen if that is longer (a deadlock, a data loader stuck on a frozen file system).
/// A worker blocked inside a collective is waiting for a peer (hung, or honestly busy writing a big checkpoint), so
/// it is not judged by its progress: the peer's own agent names the hung one, and the collective timeout is the
/// last resort for a collective some rank never issued. Download, the first step (warm-up), validation and checkpoints are judged by the heartbeat alone: they may
/// honestly take long without any step or collective.
/// </summary>
internal sealed class HangWatch : IDisposable
{
    private const int SlowestStepMultiple = 3;
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    private readonly CancellationTokenSource _stop = new();

    private HangWatch(ProgressFile file, int workerPid, TimeSpan timeout) =>
        Hung = timeout <= TimeSpan.Zero ? new TaskCompletionSource<string>().Task : WatchAsync(file, workerPid, timeout, _stop.Token);

    /// <summary>Completes with what the hung worker was doing; never when the timeout is zero (the watch is off).</summary>
    public Task<string> Hung { get; }

    public static HangWatch Start(ProgressFile file, int workerPid, TimeSpan timeout) => new(file, workerPid, timeout);

    private static async Task<string> WatchAsync(ProgressFile file, int workerPid, TimeSpan timeout, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
            if (file.Read() is { } snapshot
                && Judge(snapshot, Stopwatch.GetTimestamp(), timeout, ProcessState(workerPid)) is { } verdict)
                return verdict;
        }
    }

    /// <summary>Why the worker counts as hung at monotonic time <paramref name="now"/>, or null while it does not.</summary>
    internal static string? Judge(ProgressSnapshot progress, long now, TimeSpan timeout, char? processState)
    {
        var frozen = Seconds(now - progress.Heartbeat);
        var still = Seconds(now - progress.Progress);
        if (frozen > timeout.TotalSeconds)
        {
            var state = processState switch
            {
                'T' or 't' => " (stopped by a signal: state T)",
                'D' => " (in uninterruptible I/O: state D)",
                _ => "",
            };
            return $"its process has been frozen for {frozen:0} s{state}, with no heartbeat (--hang-timeout {timeout.TotalSeconds:0} s), {Where(progress)}";
        }
        if (!progress.Phase.IsWatched() || progress.StepsThisProcess == 0)
            return null;
        var limit = Math.Max(timeout.TotalSeconds, SlowestStepMultiple * Seconds(progress.LongestStep));
        if (!progress.InCollective && still > limit)
            return $"no progress for {still:0} s (--hang-timeout {timeout.TotalSeconds:0} s; its slowest step took {Seconds(progress.LongestStep):0.0} s), {Where(progress)}";
        return null;
    }

    /// <summary>"in the gradient all-reduce of step 38 (epoch 1); last collective #812 all-reduce of 4.2 MB, not finished".</summary>
    internal static string Where(ProgressSnapshot progress)
    {
        var where = $"in {progress.Phase.Describe()}";
        if (progress.Phase != TrainingPhase.Starting || progress.Step > 0)
            where += $" of step {progress.Step + 1} (epoch {progress.Epoch})";
        if (progress.Collectives.Count == 0)
            return where + "; no collective yet";
        var last = progress.Collectives[^1];
        var state = last.State switch
        {
            CollectiveState.Running => "not finished",
            CollectiveState.Failed => "failed",
            _ => "finished",
        };
        return $"{where}; last collective #{last.Sequence} {FlightRecord.KindName(last.Kind)} of {FlightRecord.Size(last.Bytes)}, {state}";
    }

    /// <summary>The state letter of /proc/PID/stat (R, S, D, T, Z …); null where it cannot be read.</summary>
    internal static char? ProcessState(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var end = stat.LastIndexOf(')');
            return end >= 0 && end + 2 < stat.Length ? stat[end + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
