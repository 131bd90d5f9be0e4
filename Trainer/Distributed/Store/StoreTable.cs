using System.Globalization;
using System.Text;

namespace Trainer.Distributed.Store;

/// <summary>
/// The key-value state behind <see cref="StoreServer"/>. Waiting is a parked <see cref="TaskCompletionSource{T}"/>
/// per request, filed under one key it still misses; writing that key re-checks it, so no thread ever blocks.
/// </summary>
internal sealed class StoreTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, byte[]> _values = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Waiter>> _waiters = new(StringComparer.Ordinal);

    public void Set(string key, byte[] value)
    {
        lock (_lock)
            StoreLocked(key, value);
    }

    /// <exception cref="StoreException">The key holds something other than a counter, or the sum overflows.</exception>
    public long Add(string key, long delta)
    {
        lock (_lock)
        {
            long current = 0;
            if (_values.TryGetValue(key, out var bytes)
                && !long.TryParse(Encoding.ASCII.GetString(bytes), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out current))
                throw new StoreException($"key '{key}' holds {bytes.Length} bytes that are not a decimal counter; add only to keys written by add");
            long sum;
            try
            {
                sum = checked(current + delta);
            }
            catch (OverflowException)
            {
                throw new StoreException($"adding {delta} to counter '{key}' = {current} overflows a 64-bit integer");
            }
            StoreLocked(key, Encoding.ASCII.GetBytes(sum.ToString(CultureInfo.InvariantCulture)));
            return sum;
        }
    }

    /// <summary>Returns the value after the operation; empty when the key is (still) missing.</summary>
    public byte[] CompareSet(string key, byte[] expected, byte[] desired)
    {
        lock (_lock)
        {
            var exists = _values.TryGetValue(key, out var current);
            var matches = exists ? current.AsSpan().SequenceEqual(expected) : expected.Length == 0;
            if (!matches)
                return current ?? [];
            StoreLocked(key, desired);
            return desired;
        }
    }

    public bool Check(string key)
    {
        lock (_lock)
            return _values.ContainsKey(key);
    }

    public bool Delete(string key)
    {
        lock (_lock)
            return _values.Remove(key);
    }

    /// <summary>
    /// Completes with the value of <c>keys[0]</c> once every key exists, or with null (and the keys still missing)
    /// when <paramref name="timeout"/> passes or <paramref name="cancellationToken"/> fires.
    /// </summary>
    public async Task<(byte[]? FirstValue, string[] Missing)> WaitAsync(string[] keys, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (keys.Length == 0)
            return ([], []);
        var waiter = new Waiter(keys);
        lock (_lock)
        {
            if (!TryParkLocked(waiter))
                return (_values[keys[0]], []);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        await using (deadline.Token.Register(() => Abandon(waiter)))
            return await waiter.Completion.Task;
    }

    private void Abandon(Waiter waiter)
    {
        string[] missing;
        lock (_lock)
        {
            if (waiter.Completion.Task.IsCompleted)
                return;
            if (_waiters.TryGetValue(waiter.ParkedOn!, out var parked) && parked.Remove(waiter) && parked.Count == 0)
                _waiters.Remove(waiter.ParkedOn!);
            missing = [.. waiter.Keys.Where(key => !_values.ContainsKey(key))];
        }
        waiter.Completion.TrySetResult((null, missing));
    }

    private void StoreLocked(string key, byte[] value)
    {
        _values[key] = value;
        if (!_waiters.Remove(key, out var parked))
            return;
        foreach (var waiter in parked)
            if (!TryParkLocked(waiter))
                waiter.Completion.TrySetResult((_values[waiter.Keys[0]], []));
    }

    /// <summary>Files the waiter under its first missing key; false when nothing is missing.</summary>
    private bool TryParkLocked(Waiter waiter)
    {
        var missing = waiter.Keys.FirstOrDefault(key => !_values.ContainsKey(key));
        if (missing is null)
            return false;
        waiter.ParkedOn = missing;
        if (!_waiters.TryGetValue(missing, out var parked))
            _waiters[missing] = parked = [];
        parked.Add(waiter);
        return true;
    }

    private sealed class Waiter(string[] keys)
    {
        public string[] Keys { get; } = keys;
        public string? ParkedOn { get; set; }
        public TaskCompletionSource<(byte[]?, string[])> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
