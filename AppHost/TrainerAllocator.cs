namespace AppHost;

/// <summary>
/// glibc's allocator setting for the trainers, which only a launcher can give (glibc reads GLIBC_TUNABLES when the
/// process starts): transparent huge pages for malloc. libtorch frees and re-allocates its large activation buffers
/// every step; with huge pages the fresh memory costs a few page faults instead of hundreds of thousands, and
/// freed memory still returns to the OS. See Trainer/Runtime/NativeAllocator.cs for the measurements.
/// </summary>
public static class TrainerAllocator
{
    public const string Variable = "GLIBC_TUNABLES";
    public const string HugePages = "glibc.malloc.hugetlb=1";

    /// <summary>The launcher's own GLIBC_TUNABLES plus huge pages, unless it already chooses a hugetlb mode.</summary>
    public static string Tunables(string? inherited) =>
        string.IsNullOrEmpty(inherited) ? HugePages
        : inherited.Split(':').Any(t => t.StartsWith("glibc.malloc.hugetlb=", StringComparison.Ordinal)) ? inherited
        : $"{inherited}:{HugePages}";
}
