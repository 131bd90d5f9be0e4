namespace Trainer.Distributed.Store;

/// <summary>
/// The agreement steps every group of <paramref name="worldSize"/> processes here takes through the store (the
/// workers' rendezvous, the agents' join, leave and round verdicts): claim a rank, count in, wait until a count is
/// reached, name who never claimed, and agree on one value where the first writer wins. Keys are relative to
/// <paramref name="store"/>, usually a <see cref="PrefixStore"/> of the round.
/// </summary>
internal sealed class StoreGroup(IStore store, int worldSize)
{
    public IStore Store { get; } = store;

    public int WorldSize { get; } = worldSize;

    /// <summary>Claims "rank/{rank}" for <paramref name="self"/>; returns the claim that holds (another process's, if it came first).</summary>
    public Task<byte[]> ClaimAsync(int rank, byte[] self, CancellationToken cancellationToken = default) =>
        Store.CompareSetAsync(RankKey(rank), ReadOnlyMemory<byte>.Empty, self, cancellationToken);

    public Task<byte[]> ClaimOfAsync(int rank, TimeSpan timeout, CancellationToken cancellationToken = default) => Store.GetAsync(RankKey(rank), timeout, cancellationToken);

    /// <summary>Adds one to <paramref name="counter"/> and marks the count reached, so "n have passed" is a key to wait for.</summary>
    public async Task<long> CountAsync(string counter, CancellationToken cancellationToken = default)
    {
        var count = await Store.AddAsync(counter, 1, cancellationToken);
        await Store.SetAsync($"{counter}/{count}", ReadOnlyMemory<byte>.Empty, cancellationToken);
        return count;
    }

    public Task<long> CountOfAsync(string counter, CancellationToken cancellationToken = default) => Store.AddAsync(counter, 0, cancellationToken);

    /// <summary>Waits until <paramref name="counter"/> has reached <paramref name="count"/> (all of the group by default).</summary>
    public Task WaitForCountAsync(string counter, TimeSpan timeout, long? count = null, CancellationToken cancellationToken = default) =>
        Store.WaitAsync([$"{counter}/{count ?? WorldSize}"], timeout, cancellationToken);

    /// <summary>The ranks that never claimed theirs, at most <paramref name="limit"/> + 1 of them (more means "…").</summary>
    public async Task<IReadOnlyList<int>> MissingAsync(int limit = 16, CancellationToken cancellationToken = default)
    {
        var missing = new List<int>();
        for (var rank = 0; rank < WorldSize && missing.Count <= limit; rank++)
            if (!await Store.CheckAsync(RankKey(rank), cancellationToken))
                missing.Add(rank);
        return missing;
    }

    /// <summary>Proposes <paramref name="proposal"/> for <paramref name="key"/>; the first proposal wins and is returned to everyone.</summary>
    public Task<byte[]> AgreeAsync(string key, byte[] proposal, CancellationToken cancellationToken = default) =>
        Store.CompareSetAsync(key, ReadOnlyMemory<byte>.Empty, proposal, cancellationToken);

    private static string RankKey(int rank) => $"rank/{rank}";
}
