namespace Trainer.Distributed.Store;

/// <summary>
/// c10d's PrefixStore: a view of <paramref name="inner"/> where every key lives under "{prefix}/", so a process group,
/// a rendezvous round or an agent round can use short names without colliding with any other. Disposing the view
/// leaves the inner store open.
/// </summary>
public sealed class PrefixStore(string prefix, IStore inner) : IStore
{
    public string Prefix { get; } = prefix;

    public string KeyOf(string key) => $"{Prefix}/{key}";

    public Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) => inner.SetAsync(KeyOf(key), value, cancellationToken);

    public Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default) => inner.GetAsync(KeyOf(key), timeout, cancellationToken);

    public Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default) => inner.AddAsync(KeyOf(key), delta, cancellationToken);

    public Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default) =>
        inner.CompareSetAsync(KeyOf(key), expected, desired, cancellationToken);

    public Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        inner.WaitAsync([.. keys.Select(KeyOf)], timeout, cancellationToken);

    public Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default) => inner.CheckAsync(KeyOf(key), cancellationToken);

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(KeyOf(key), cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
