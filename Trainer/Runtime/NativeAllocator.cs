using System.Runtime.InteropServices;

namespace Trainer.Runtime;

/// <summary>
/// Keeps glibc malloc from returning libtorch's large per-step buffers to the kernel and mapping them
/// afresh on the next step (page faults and zeroing on every step): the in-process equivalent of
/// MALLOC_MMAP_THRESHOLD_=256 MiB MALLOC_TRIM_THRESHOLD_=1 GiB MALLOC_TOP_PAD_=256 MiB. Measured here at
/// k = 1 on 2 threads: about 15% more images per second. Environment settings, when present, win.
/// </summary>
internal static partial class NativeAllocator
{
    private const int MTrimThreshold = -1;
    private const int MTopPad = -2;
    private const int MMmapThreshold = -3;

    /// <summary>Applies the settings once; returns false where they do not apply (not glibc, or set in the environment).</summary>
    public static bool Tune()
    {
        if (!OperatingSystem.IsLinux()) return false;
        if (Environment.GetEnvironmentVariables().Keys.OfType<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal))) return false;
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

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
