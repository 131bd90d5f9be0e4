using System.Globalization;

namespace Bench;

/// <summary>What the kernel counts for this process: peak resident memory, minor page faults, CPU time, its malloc (Linux /proc).</summary>
internal static class ProcessCounters
{
    /// <summary>VmHWM from /proc/self/status in bytes: the peak resident set size; 0 where /proc is missing.</summary>
    public static long PeakResidentBytes()
    {
        if (!File.Exists("/proc/self/status")) return 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    /// <summary>Minor page faults so far (field 10 of /proc/self/stat); 0 where /proc is missing.</summary>
    public static long MinorFaults() => Stat(7); // fields after "pid (comm)": state is [0], minflt is [7]

    /// <summary>CPU time spent in the kernel so far (stime, field 15 of /proc/self/stat): page faults and zeroing show here.</summary>
    public static TimeSpan KernelTime() => TimeSpan.FromSeconds(Stat(12) / 100.0); // clock ticks of USER_HZ = 100

    /// <summary>CPU time in user space and the kernel so far (utime + stime): what a step costs, whatever else runs on the machine.</summary>
    public static TimeSpan CpuTime() => TimeSpan.FromSeconds((Stat(11) + Stat(12)) / 100.0);

    /// <summary>The malloc this process runs on: tcmalloc or mimalloc when one is mapped (preloaded), else glibc.</summary>
    public static string Malloc()
    {
        if (!File.Exists("/proc/self/maps")) return "unknown";
        var maps = File.ReadAllText("/proc/self/maps");
        return maps.Contains("libtcmalloc", StringComparison.Ordinal) ? "tcmalloc" : maps.Contains("libmimalloc", StringComparison.Ordinal) ? "mimalloc" : "glibc";
    }

    private static long Stat(int field)
    {
        if (!File.Exists("/proc/self/stat")) return 0;
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[field], CultureInfo.InvariantCulture);
    }
}
