using System.Text;
using Trainer.Distributed.Store;

namespace Trainer.Tests.Distributed;

/// <summary>PrefixStore's key layout and the agreement steps of StoreGroup, on the in-memory store.</summary>
public sealed class StoreGroupTests
{
    [Fact]
    public async Task A_prefix_store_keeps_every_key_under_its_prefix()
    {
        var store = new InMemoryStore();
        var view = new PrefixStore("pg/3", store);
        await view.SetAsync("cpu/rank0", "a"u8.ToArray());
        await view.AddAsync("count", 2);

        Assert.Equal("a", Encoding.UTF8.GetString(await store.GetAsync("pg/3/cpu/rank0", TimeSpan.Zero)));
        Assert.Equal(2, await store.AddAsync("pg/3/count", 0));
        Assert.False(await store.CheckAsync("cpu/rank0"));
        await view.WaitAsync(["cpu/rank0"], TimeSpan.Zero);
        Assert.True(await view.DeleteAsync("cpu/rank0"));
        Assert.False(await store.CheckAsync("pg/3/cpu/rank0"));
    }

    [Fact]
    public async Task Ranks_claim_count_in_and_agree_on_the_first_proposal()
    {
        var store = new InMemoryStore();
        var group = new StoreGroup(new PrefixStore("agent", store), worldSize: 3);

        Assert.Equal("me", Encoding.UTF8.GetString(await group.ClaimAsync(1, "me"u8.ToArray())));
        Assert.Equal("me", Encoding.UTF8.GetString(await group.ClaimAsync(1, "impostor"u8.ToArray())));
        Assert.Equal([0, 2], await group.MissingAsync());

        Assert.Equal(1, await group.CountAsync("joined"));
        Assert.Equal(2, await group.CountAsync("joined"));
        await Assert.ThrowsAsync<TimeoutException>(() => group.WaitForCountAsync("joined", TimeSpan.FromMilliseconds(50)));
        await group.WaitForCountAsync("joined", TimeSpan.Zero, count: 2);
        await group.CountAsync("joined");
        await group.WaitForCountAsync("joined", TimeSpan.Zero);
        Assert.Equal(3, await group.CountOfAsync("joined"));

        Assert.Equal("first", Encoding.UTF8.GetString(await group.AgreeAsync("over", "first"u8.ToArray())));
        Assert.Equal("first", Encoding.UTF8.GetString(await group.AgreeAsync("over", "second"u8.ToArray())));
        Assert.True(await store.CheckAsync("agent/rank/1") && await store.CheckAsync("agent/joined/3") && await store.CheckAsync("agent/over"));
    }
}
