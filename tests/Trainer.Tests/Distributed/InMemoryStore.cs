using System.Globalization;
using System.Text;
using Trainer.Distributed.Store;

namespace Trainer.Tests.Distributed;

/// <summary>A thread-safe <see cref="IStore"/> in one process, for ranks that run as threads of the test.</summary>
internal sealed class InMemoryStore(TimeSpan? defaultTimeout = null) : IStore
{
    private readonly TimeSpan defaultTimeout = defaultTimeout ?? TimeSpan.FromSeconds(30);
    private readonly Lock gate = new();
    private readonly Dictionary<string, byte[]> values = [];
    private TaskCompletionSource changed = NewSignal();

    public Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default)
    {
        lock (gate)
            Store(key, value.ToArray());
        return Task.CompletedTask;
    }

    public async Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await WaitAsync([key], timeout, cancellationToken);
        lock (gate)
            return values[key].ToArray();
    }

    public Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            var current = values.TryGetValue(key, out var bytes) ? long.Parse(Encoding.UTF8.GetString(bytes), CultureInfo.InvariantCulture) : 0;
            var updated = current + delta;
            Store(key, Encoding.UTF8.GetBytes(updated.ToString(CultureInfo.InvariantCulture)));
            return Task.FromResult(updated);
        }
    }

    public Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default)
    {
        lock (gate)
        {
            var exists = values.TryGetValue(key, out var current);
            if ((!exists && expected.IsEmpty) || (exists && current!.AsSpan().SequenceEqual(expected.Span)))
                Store(key, desired.ToArray());
            return Task.FromResult(values.TryGetValue(key, out var after) ? after.ToArray() : expected.ToArray());
        }
    }

    public async Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var limit = timeout ?? defaultTimeout;
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            Task signal;
            lock (gate)
            {
                if (keys.All(values.ContainsKey))
                    return;
                signal = changed.Task;
            }
            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
                throw new TimeoutException($"Keys [{string.Join(", ", keys.Where(k => !values.ContainsKey(k)))}] did not appear in the store within {limit}.");
            try
            {
                await signal.WaitAsync(remaining, cancellationToken);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    public Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (gate)
            return Task.FromResult(values.ContainsKey(key));
    }

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (gate)
            return Task.FromResult(values.Remove(key));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private void Store(string key, byte[] value)
    {
        values[key] = value;
        var previous = changed;
        changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
