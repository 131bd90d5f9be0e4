namespace AppHost.Tests;

public class TrainerAllocatorTests
{
    [Theory]
    [InlineData(null, "glibc.malloc.hugetlb=1")]
    [InlineData("", "glibc.malloc.hugetlb=1")]
    [InlineData("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")]
    [InlineData("glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0")] // the user's own choice stays
    public void Trainers_get_huge_pages_on_top_of_the_launchers_tunables(string? inherited, string expected) =>
        Assert.Equal(expected, TrainerAllocator.Tunables(inherited));
}
