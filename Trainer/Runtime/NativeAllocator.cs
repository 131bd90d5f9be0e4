using System.Runtime.InteropServices;

namespace Trainer.Runtime;

/// <summary>
/// glibc malloc for libtorch's large per-step buffers. By default glibc maps each big activation afresh and returns
/// it on free, so every step pays page faults and zeroing: about 35,000 minor faults per step at k = 1 here, and
/// 0.4-1.0x PyTorch's speed. Two remedies, measured at k = 6 (batch 128, 2 threads; PyTorch 1.13: 1.95 GB peak,
/// 530,000 faults per step):
/// <list type="bullet">
/// <item>The launcher's GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1 (glibc reads it before the
/// process starts; see AppHost/TrainerAllocator.cs): big blocks still go back to the OS, but fresh memory comes in
/// transparent huge pages, and every thread uses the main heap. 1.95 GB peak, 25,000 faults.</item>
/// <item>Otherwise, this class's mallopt settings, the in-process MALLOC_MMAP_THRESHOLD_=256 MiB
/// MALLOC_TRIM_THRESHOLD_=1 GiB MALLOC_TOP_PAD_=256 MiB: freed blocks stay in the heap for the next step.
/// 2.5 GB peak, 12,000 faults.</item>
/// </list>
/// Explicit MALLOC_* settings in the environment win over both.
/// </summary>
internal static partial class NativeAllocator
{
    public const string TunablesVariable = "GLIBC_TUNABLES";

    private const int MTrimThreshold = -1;
    private const int MTopPad = -2;
    private const int MMmapThreshold = -3;

    /// <summary>Applies the mallopt settings once; returns false where they do not apply (not glibc, set in the environment, or huge pages in use).</summary>
    public static bool Tune()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariables().Keys.OfType<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal))) return false;
        if (UsesHugePages(Environment.GetEnvironmentVariable(TunablesVariable), ReadTransparentHugePageMode())) return false;
        try
        {
            return mallopt(MMmapThreshold, 256 << 20) == 1
                & mallopt(MTrimThreshold, 1 << 30) == 1
                & mallopt(MTopPad, 256 << 20) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // musl and other C libraries: leave their defaults
        }
    }

    /// <summary>
    /// Whether malloc gets transparent huge pages: glibc.malloc.hugetlb=1 or 2 in <paramref name="tunables"/>, and the
    /// kernel's THP mode (the bracketed word of /sys/kernel/mm/transparent_hugepage/enabled) is not "never".
    /// </summary>
    internal static bool UsesHugePages(string? tunables, string? transparentHugePageMode)
    {
        if (transparentHugePageMode is null or "never") return false;
        return (tunables ?? "").Split(':').Any(t => t is "glibc.malloc.hugetlb=1" or "glibc.malloc.hugetlb=2");
    }

    private static string? ReadTransparentHugePageMode()
    {
        try
        {
            var text = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
            var start = text.IndexOf('[');
            var end = text.IndexOf(']', start + 1);
            return start >= 0 && end > start ? text[(start + 1)..end] : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
