using Trainer.Runtime;

namespace Trainer.Tests.Runtime;

public class NativeAllocatorTests
{
    [Theory]
    [InlineData("glibc.malloc.hugetlb=1", "madvise", true)]
    [InlineData("glibc.malloc.hugetlb=2", "always", true)]
    [InlineData("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "madvise", true)]
    [InlineData("glibc.malloc.hugetlb=1", "never", false)] // the kernel gives no huge pages: keep the heap instead
    [InlineData("glibc.malloc.hugetlb=1", null, false)]     // no THP at all
    [InlineData("glibc.malloc.hugetlb=0", "madvise", false)]
    [InlineData("glibc.malloc.arena_max=2", "always", false)]
    [InlineData(null, "always", false)]
    public void Huge_pages_are_in_use_only_when_glibc_asks_for_them_and_the_kernel_gives_them(string? tunables, string? mode, bool expected) =>
        Assert.Equal(expected, NativeAllocator.UsesHugePages(tunables, mode));
}
