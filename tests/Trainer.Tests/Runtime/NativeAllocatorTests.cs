using Trainer.Runtime;

namespace Trainer.Tests.Runtime;

public class NativeAllocatorTests
{
    [Theory]
    [InlineData(null, false)]
    [InlineData("glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1", false)] // the launcher's: the thresholds still apply
    [InlineData("glibc.malloc.mmap_threshold=1048576", true)]
    [InlineData("glibc.malloc.hugetlb=1:glibc.malloc.trim_threshold=0", true)]
    [InlineData("glibc.malloc.top_pad=0", true)]
    public void Thresholds_chosen_in_GLIBC_TUNABLES_win(string? tunables, bool chosen) =>
        Assert.Equal(chosen, NativeAllocator.SetsThresholds(tunables));
}

public class WorkerMallocTests
{
    private const string Installed = "/usr/lib/x86_64-linux-gnu/" + NativeAllocator.Tcmalloc;

    private static bool Exists(string path) => path == Installed;

    [Fact]
    public void Tcmalloc_is_preloaded_where_installed()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return;
        Assert.Equal(Installed, NativeAllocator.ForWorker(null, null, Exists).Preload);
        Assert.Equal(Installed, NativeAllocator.ForWorker("tcmalloc", "", Exists).Preload);
    }

    [Theory]
    [InlineData("glibc", null)]
    [InlineData(null, "/opt/jemalloc/libjemalloc.so.2")] // the user's own preload wins and is not added to
    [InlineData("tcmalloc", "/opt/jemalloc/libjemalloc.so.2")]
    public void Glibc_or_the_users_LD_PRELOAD_preload_nothing(string? choice, string? preload) =>
        Assert.Null(NativeAllocator.ForWorker(choice, preload, Exists).Preload);

    [Fact]
    public void Without_tcmalloc_the_default_is_glibc_and_insisting_names_the_package()
    {
        if (!OperatingSystem.IsLinux()) return;
        var chosen = NativeAllocator.ForWorker(null, null, _ => false);
        Assert.Null(chosen.Preload);
        Assert.Contains("libtcmalloc-minimal4", chosen.Description);
        var e = Assert.Throws<Trainer.Distributed.ContractException>(() => NativeAllocator.ForWorker("tcmalloc", null, _ => false));
        Assert.Contains("apt-get install libtcmalloc-minimal4", e.Message);
    }

    [Fact]
    public void An_unknown_choice_names_the_valid_ones()
    {
        var e = Assert.Throws<Trainer.Distributed.ContractException>(() => NativeAllocator.ForWorker("jemalloc", null, Exists));
        Assert.Contains("TRAINER_MALLOC=jemalloc: use tcmalloc", e.Message);
        Assert.Contains("glibc", e.Message);
    }
}
