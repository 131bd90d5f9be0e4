namespace AppHost;

/// <summary>
/// glibc's allocator settings for the trainers, which only a launcher can give (glibc reads GLIBC_TUNABLES when the
/// process starts). libtorch frees and re-allocates its large activation buffers every step:
/// <list type="bullet">
/// <item>glibc.malloc.hugetlb=1: fresh memory comes in transparent huge pages, so it costs a few page faults instead
/// of hundreds of thousands, and freed memory still returns to the OS (peak memory at PyTorch's level).</item>
/// <item>glibc.malloc.arena_max=1: every thread allocates from the main heap. Training runs on a thread-pool thread
/// (after the host's awaits), and a thread's own arena gives its memory back and faults it in again every step
/// (22,000 faults per step at k = 1 against 130 with one arena).</item>
/// </list>
/// See Trainer/Runtime/NativeAllocator.cs for the measurements and the in-process fallback.
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
