using System.Runtime.InteropServices;

namespace Trainer.Runtime;

/// <summary>
/// glibc malloc for libtorch's large per-step buffers. By default glibc maps big blocks afresh and returns them on
/// free, so every step pays page faults and the kernel's zeroing of fresh memory: about 35,000 minor faults per step
/// at k = 1 here, and 0.4-1.0x PyTorch's speed. This sets what glibc's adaptive threshold settles on anyway, from the
/// first step and without trimming: blocks up to 32 MiB (glibc's largest mmap threshold, MALLOC_MMAP_THRESHOLD_) stay
/// in the heap and are reused, and MALLOC_TRIM_THRESHOLD_=1 GiB keeps the heap from shrinking and growing every
/// step. Larger blocks (k = 6's 50 MB activations) still go back to the OS, as in PyTorch, so peak memory stays
/// at PyTorch's; the launcher's GLIBC_TUNABLES (AppHost/TrainerAllocator.cs) makes their fresh memory come in huge
/// pages. The top pad stays glibc's: a 256 MiB pad measured the same speed and 150-240 MiB more peak memory at k = 6.
/// Measured at k = 6, batch 128, 2 threads, quiet machine (images/s, kernel CPU seconds per step, peak memory):
/// PyTorch 1.13 19-24, 3.3 s, 2.16 GB; glibc's defaults 26, 1.5 s, 1.95 GB; this with the launcher's tunables
/// 32-34, 0.6 s, 2.04-2.13 GB. Explicit MALLOC_* variables or malloc thresholds in GLIBC_TUNABLES win.
/// </summary>
internal static partial class NativeAllocator
{
    public const string TunablesVariable = "GLIBC_TUNABLES";

    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    /// <summary>Applies the settings once; returns false where they do not apply (not glibc, or chosen in the environment).</summary>
    public static bool Tune()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariables().Keys.OfType<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal))) return false;
        if (SetsThresholds(Environment.GetEnvironmentVariable(TunablesVariable))) return false;
        try
        {
            return mallopt(MMmapThreshold, 32 << 20) == 1
                & mallopt(MTrimThreshold, 1 << 30) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // musl and other C libraries: leave their defaults
        }
    }

    /// <summary>Whether GLIBC_TUNABLES already chooses one of the thresholds this class sets.</summary>
    internal static bool SetsThresholds(string? tunables) =>
        (tunables ?? "").Split(':').Any(t => t.StartsWith("glibc.malloc.mmap_threshold=", StringComparison.Ordinal)
                                             || t.StartsWith("glibc.malloc.trim_threshold=", StringComparison.Ordinal)
                                             || t.StartsWith("glibc.malloc.top_pad=", StringComparison.Ordinal));

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
