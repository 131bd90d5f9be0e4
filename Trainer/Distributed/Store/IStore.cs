namespace Trainer.Distributed.Store;

/// <summary>
/// The rendezvous key-value store every rank shares (the role of PyTorch's TCPStore): rank 0 serves it on
/// MASTER_PORT, every rank (rank 0 too) talks to it through a client. Blocking reads wait for the key.
/// Every call that can wait takes a timeout; a timeout raises <see cref="TimeoutException"/> naming the keys.
/// </summary>
public interface IStore : IAsyncDisposable
{
    Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default);

    /// <summary>Waits until <paramref name="key"/> exists (up to the timeout, or the store's default), then returns its value.</summary>
    Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Atomically adds <paramref name="delta"/> to the 64-bit counter at <paramref name="key"/> (missing = 0) and returns the new value.</summary>
    Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default);

    /// <summary>Sets <paramref name="key"/> to <paramref name="desired"/> if its value equals <paramref name="expected"/>
    /// (an empty <paramref name="expected"/> matches a missing key); returns the value after the operation.</summary>
    Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default);

    /// <summary>Waits until all <paramref name="keys"/> exist.</summary>
    Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>True when the key exists, without waiting.</summary>
    Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default);

    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default);
}
