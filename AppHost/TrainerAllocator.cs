namespace AppHost;

/// <summary>
/// glibc's allocator settings for the trainers that only a launcher can give (glibc reads GLIBC_TUNABLES when the
/// process starts); the Trainer sets the rest itself (Trainer/Runtime/NativeAllocator.cs, with the measurements).
/// They matter only where the worker runs on glibc: where tcmalloc is installed the Trainer's agent preloads it into
/// the worker (NativeAllocator.Worker) and these settings have nothing to tune.
/// <list type="bullet">
/// <item>glibc.malloc.hugetlb=1: the blocks libtorch maps afresh every step come in transparent huge pages, a few
/// page faults instead of tens of thousands.</item>
/// <item>glibc.malloc.arena_max=1: every thread allocates from the main heap. Training runs on a thread-pool thread
/// (after the host's awaits); its own arena measured 22,000 faults per step at k = 1 against 130 with one arena.</item>
/// </list>
/// </summary>
public static class TrainerAllocator
{
    public const string Variable = "GLIBC_TUNABLES";
    public static readonly IReadOnlyList<string> Settings = ["glibc.malloc.hugetlb=1", "glibc.malloc.arena_max=1"];

    /// <summary>The launcher's own GLIBC_TUNABLES plus each of <see cref="Settings"/> it does not already choose.</summary>
    public static string Tunables(string? inherited)
    {
        var tunables = (inherited ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).ToList();
        foreach (var setting in Settings)
        {
            var name = setting[..(setting.IndexOf('=') + 1)];
            if (!tunables.Any(t => t.StartsWith(name, StringComparison.Ordinal)))
                tunables.Add(setting);
        }
        return string.Join(':', tunables);
    }
}
