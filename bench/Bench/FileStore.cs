using System.Globalization;
using System.Text;
using Trainer.Distributed.Store;

namespace Bench;

/// <summary>
/// An <see cref="IStore"/> shared by processes on one machine through a directory: enough for the benchmark's
/// rendezvous. (Once the TCP store is merged, the benchmark can use StoreServer/StoreClient instead.)
/// </summary>
internal sealed class FileStore(string directory) : IStore
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    public async Task SetAsync(string key, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        await File.WriteAllBytesAsync(temporary, value.ToArray(), cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }

    public async Task<byte[]> GetAsync(string key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await WaitAsync([key], timeout, cancellationToken);
        return await File.ReadAllBytesAsync(PathOf(key), cancellationToken);
    }

    public async Task<long> AddAsync(string key, long delta, CancellationToken cancellationToken = default)
    {
        using var _ = await LockAsync(cancellationToken);
        var path = PathOf(key);
        var current = File.Exists(path) ? long.Parse(await File.ReadAllTextAsync(path, cancellationToken), CultureInfo.InvariantCulture) : 0;
        await SetAsync(key, Encoding.UTF8.GetBytes((current + delta).ToString(CultureInfo.InvariantCulture)), cancellationToken);
        return current + delta;
    }

    public async Task<byte[]> CompareSetAsync(string key, ReadOnlyMemory<byte> expected, ReadOnlyMemory<byte> desired, CancellationToken cancellationToken = default)
    {
        using var _ = await LockAsync(cancellationToken);
        var path = PathOf(key);
        var current = File.Exists(path) ? await File.ReadAllBytesAsync(path, cancellationToken) : null;
        if ((current is null && expected.IsEmpty) || (current is not null && current.AsSpan().SequenceEqual(expected.Span)))
        {
            await SetAsync(key, desired, cancellationToken);
            return desired.ToArray();
        }
        return current ?? expected.ToArray();
    }

    public async Task WaitAsync(IReadOnlyList<string> keys, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var limit = timeout ?? DefaultTimeout;
        var deadline = DateTime.UtcNow + limit;
        while (!keys.All(k => File.Exists(PathOf(k))))
        {
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException($"Keys [{string.Join(", ", keys.Where(k => !File.Exists(PathOf(k))))}] did not appear in {directory} within {limit}.");
            await Task.Delay(5, cancellationToken);
        }
    }

    public Task<bool> CheckAsync(string key, CancellationToken cancellationToken = default) => Task.FromResult(File.Exists(PathOf(key)));

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        var existed = File.Exists(path);
        File.Delete(path);
        return Task.FromResult(existed);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private string PathOf(string key) => Path.Combine(directory, Convert.ToHexString(Encoding.UTF8.GetBytes(key)));

    private async Task<FileStream> LockAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + DefaultTimeout;
        while (true)
        {
            try
            {
                return new FileStream(Path.Combine(directory, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(2, cancellationToken);
            }
        }
    }
}
