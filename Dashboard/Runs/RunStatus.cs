namespace Dashboard.Runs;

/// <summary>
/// A run's rules, apart from how it is stored: the statuses of a rank and of a run, how the ranks' make the run's,
/// which are final, and how a duration reads. The app host compiles this file too (AppHost/RunStatePublisher.cs), so
/// the launcher's run resource and the Dashboard cannot disagree.
/// </summary>
public static class RunStatus
{
    public const string Running = "running";
    public const string Finished = "finished";
    public const string Stopped = "stopped";
    public const string Failed = "failed";

    /// <summary>Not heard from for <see cref="LostAfter"/>; not final: an elastic restart brings the rank back.</summary>
    public const string Lost = "lost";

    public static readonly TimeSpan LostAfter = TimeSpan.FromSeconds(60);

    /// <summary>How the rank ended (finished, stopped, failed), else running, or lost once silent for <see cref="LostAfter"/>.</summary>
    public static string OfRank(string? endStatus, DateTimeOffset lastSeen, DateTimeOffset now) =>
        endStatus ?? (now - lastSeen > LostAfter ? Lost : Running);

    /// <summary>Running while any rank runs or not all have reported; then failed, lost, stopped or finished, the worst first.</summary>
    public static string OfRun(IReadOnlyCollection<string> ranks, int worldSize)
    {
        if (ranks.Count == 0 || ranks.Contains(Running)) return Running;
        if (ranks.Contains(Failed)) return Failed;
        if (ranks.Contains(Lost)) return Lost;
        if (ranks.Count < worldSize) return Running;
        return ranks.Contains(Stopped) ? Stopped : Finished;
    }

    /// <summary>The run is over and will not change again.</summary>
    public static bool IsFinal(string status) => status is Finished or Stopped or Failed;

    /// <summary>"1h 05m", "3m 07s", "42s".</summary>
    public static string FormatDuration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h {t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds:D2}s" : $"{t.Seconds}s";
    }
}
