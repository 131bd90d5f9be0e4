using System.Runtime.InteropServices;
using Trainer.Distributed;

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
/// <para>
/// Where tcmalloc is installed, the workers run on it instead (<see cref="Worker"/>): the agent preloads it, as
/// PyTorch's and Intel's CPU tuning guides tell PyTorch users to do. Measured side by side at batch 128, 2 threads
/// (peak memory; images/s within the machine's noise of glibc's): k = 1 393 MiB against 703 with the glibc settings
/// here, k = 6 1,420 MiB against 2,191, and 60 ms of kernel time per k = 6 step against 830; PyTorch with tcmalloc
/// 448 and 1,482 MiB. mimalloc measured 1.6 million page faults per k = 6 step (it returns memory eagerly): not used.
/// </para>
/// </summary>
internal static partial class NativeAllocator
{
    public const string TunablesVariable = "GLIBC_TUNABLES";
    public const string ChoiceVariable = "TRAINER_MALLOC";
    public const string PreloadVariable = "LD_PRELOAD";
    public const string Tcmalloc = "libtcmalloc_minimal.so.4";

    private static readonly Lazy<WorkerMalloc> WorkerChoice = new(() => ForWorker(
        Environment.GetEnvironmentVariable(ChoiceVariable), Environment.GetEnvironmentVariable(PreloadVariable), File.Exists));

    /// <summary>This agent's choice for its workers, from the environment; a bad TRAINER_MALLOC throws <see cref="ContractException"/>.</summary>
    public static WorkerMalloc Worker => WorkerChoice.Value;

    /// <summary>
    /// The workers' malloc: tcmalloc where <see cref="Tcmalloc"/> is installed (Debian/Ubuntu: libtcmalloc-minimal4),
    /// else glibc's with the settings of this class. TRAINER_MALLOC=glibc keeps glibc's; TRAINER_MALLOC=tcmalloc
    /// insists on tcmalloc; the user's own LD_PRELOAD is left alone and nothing is added to it.
    /// </summary>
    internal static WorkerMalloc ForWorker(string? choice, string? preload, Func<string, bool> exists)
    {
        if (!string.IsNullOrEmpty(preload)) return new($"as LD_PRELOAD chooses ({preload})", null);
        if (choice is not (null or "" or "tcmalloc" or "glibc"))
            throw new ContractException($"{ChoiceVariable}={choice}: use tcmalloc (the default where {Tcmalloc} is installed) or glibc");
        if (choice == "glibc" || !OperatingSystem.IsLinux()) return new("glibc", null);
        var path = LibraryDirectories().Select(d => Path.Combine(d, Tcmalloc)).FirstOrDefault(exists);
        if (path is not null) return new($"tcmalloc ({path}; {ChoiceVariable}=glibc for glibc's)", path);
        if (choice == "tcmalloc")
            throw new ContractException($"{ChoiceVariable}=tcmalloc: {Tcmalloc} is not in {string.Join(", ", LibraryDirectories())}; "
                                        + "install it (Debian/Ubuntu: apt-get install libtcmalloc-minimal4; Fedora: gperftools-libs) or unset " + ChoiceVariable);
        return new($"glibc ({Tcmalloc} is not installed: apt-get install libtcmalloc-minimal4 for tcmalloc)", null);
    }

    private static IEnumerable<string> LibraryDirectories()
    {
        var multiarch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x86_64-linux-gnu",
            Architecture.Arm64 => "aarch64-linux-gnu",
            _ => null,
        };
        if (multiarch is not null) yield return $"/usr/lib/{multiarch}";
        yield return "/usr/lib64";
        yield return "/usr/lib";
        yield return "/usr/local/lib";
    }

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
            return Interop.Libc.Mallopt(MMmapThreshold, 32 << 20) == 1
                & Interop.Libc.Mallopt(MTrimThreshold, 1 << 30) == 1;
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

    /// <summary>How a worker's malloc was chosen (for the agent's log), and the library to preload, if any.</summary>
    internal sealed record WorkerMalloc(string Description, string? Preload);
}
