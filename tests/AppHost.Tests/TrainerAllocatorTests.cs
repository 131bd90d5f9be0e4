namespace AppHost.Tests;

public class TrainerAllocatorTests
{
    [Theory]
    [InlineData(null, "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1")]
    [InlineData("", "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1")]
    [InlineData("glibc.malloc.tcache_count=0", "glibc.malloc.tcache_count=0:glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1")]
    [InlineData("glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0:glibc.malloc.arena_max=1")] // the user's own choice stays
    [InlineData("glibc.malloc.arena_max=4:glibc.malloc.hugetlb=2", "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=2")]
    public void Trainers_get_the_allocator_settings_on_top_of_the_launchers_tunables(string? inherited, string expected) =>
        Assert.Equal(expected, TrainerAllocator.Tunables(inherited));
}
