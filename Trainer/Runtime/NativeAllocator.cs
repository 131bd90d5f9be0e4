using System.Runtime.InteropServices;

namespace Trainer.Runtime;

/// <summary>
/// glibc malloc for libtorch's large per-step buffers. By default glibc maps big blocks afresh and returns them on
/// free, so every step pays page faults and the kernel's zeroing of fresh memory: about 35,000 minor faults per step
/// at k = 1 here, and 0.4-1.0x PyTorch's speed. This sets what glibc's adaptive threshold settles on anyway, from the
/// first step and without trimming: blocks up to 32 MiB (glibc's largest mmap threshold, MALLOC_MMAP_THRESHOLD_) stay
/// in the heap and are reused, MALLOC_TRIM_THRESHOLD_=1 GiB and MALLOC_TOP_PAD_=256 MiB keep the heap from shrinking
/// and growing every step. Larger blocks (k = 6's 50 MB activations) still go back to the OS, as in PyTorch, so peak
/// memory stays at PyTorch's; the launcher's GLIBC_TUNABLES (AppHost/TrainerAllocator.cs) makes their fresh memory
/// come in huge pages. Measured at k = 6, batch 128, 2 threads (kernel CPU seconds per step, peak memory):
/// PyTorch 1.13 1.1 s, 2.0-2.2 GB; this with the launcher's tunables 1.1 s, 1.9 GB; keeping every block in the heap
/// (MALLOC_MMAP_THRESHOLD_=268435456) 0.2 s, 2.5-2.8 GB: set that on the launcher to trade memory for speed.
/// Explicit MALLOC_* variables or malloc thresholds in GLIBC_TUNABLES win.
/// </summary>
internal static partial class NativeAllocator
{
    public const string TunablesVariable = "GLIBC_TUNABLES";

    private const int MTrimThreshold = -1;
    private const int MTopPad = -2;
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
                & mallopt(MTrimThreshold, 1 << 30) == 1
                & mallopt(MTopPad, 256 << 20) == 1;
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
