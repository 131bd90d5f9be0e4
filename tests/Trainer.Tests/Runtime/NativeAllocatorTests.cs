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
