using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace Trainer.Data;

/// <summary>
/// Finds CIFAR-10's binary folder in a cache, or downloads cifar-10-binary.tar.gz, checks its published MD5
/// and extracts it there atomically (into a temporary folder, then one rename), as torchvision does.
/// </summary>
internal sealed class Cifar10Download(string cacheDirectory, string baseUrl, string expectedMd5 = Cifar10Download.PublishedMd5, TimeSpan? stallTimeout = null)
{
    public const string DefaultBaseUrl = "https://www.cs.toronto.edu/~kriz/";
    public const string FileName = "cifar-10-binary.tar.gz";
    public const string PublishedMd5 = "c32a1d4ab5d03f1284b67883e8d87530";

    /// <summary>Overrides <see cref="DefaultBaseUrl"/> (a mirror, or a local server in tests).</summary>
    public const string BaseUrlVariable = "TRAINER_DATA_URL";

    private readonly TimeSpan _stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(60);

    public string CacheDirectory { get; } = cacheDirectory;

    public Uri Url { get; } = new(new Uri(baseUrl.EndsWith('/') ? baseUrl : baseUrl + "/"), FileName);

    /// <summary>$XDG_CACHE_HOME/dotnet-ddp/cifar10, else ~/.cache/dotnet-ddp/cifar10.</summary>
    public static string DefaultCacheDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
            : xdg;
        return Path.Combine(root, "dotnet-ddp", "cifar10");
    }

    public static string BaseUrlFromEnvironment() =>
        Environment.GetEnvironmentVariable(BaseUrlVariable) is { Length: > 0 } url ? url : DefaultBaseUrl;

    /// <summary>The extracted batches folder, downloading and extracting first when the cache lacks it.</summary>
    public async Task<string> EnsureAsync(IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var batches = Path.Combine(CacheDirectory, Cifar10Binary.FolderName);
        if (Cifar10Binary.FindBatchesDirectory(batches) is { } found) return found;
        Directory.CreateDirectory(CacheDirectory);

        var placed = Path.Combine(CacheDirectory, FileName);
        if (File.Exists(placed))
        {
            // Put there by hand (offline machines): check it, but never delete the user's file.
            var md5 = await Md5Async(placed, cancellationToken);
            if (md5 != expectedMd5)
                throw new InvalidDataException($"{placed}: MD5 {md5} differs from the published {expectedMd5}; the file is corrupt or not {FileName}: replace it.");
            Extract(placed, batches);
            return batches;
        }

        var partial = Path.Combine(CacheDirectory, $"{FileName}.{Guid.NewGuid():N}.partial");
        try
        {
            var md5 = await DownloadAsync(partial, progress, cancellationToken);
            if (md5 != expectedMd5)
                throw new InvalidDataException($"{Url}: downloaded file has MD5 {md5}, not the published {expectedMd5}; nothing was kept. Retry, or download {FileName} yourself into {CacheDirectory}.");
            Extract(partial, batches);
            return batches;
        }
        finally
        {
            File.Delete(partial);
        }
    }

    private async Task<string> DownloadAsync(string destination, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        try
        {
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stall.CancelAfter(_stallTimeout);
            using var response = await http.GetAsync(Url, HttpCompletionOption.ResponseHeadersRead, stall.Token);
            response.EnsureSuccessStatusCode();
            var total = response.Content.Headers.ContentLength;
            await using var body = await response.Content.ReadAsStreamAsync(stall.Token);
            await using var file = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            var buffer = new byte[1 << 16];
            long received = 0;
            progress?.Report(new DownloadProgress(0, total));
            while (true)
            {
                stall.CancelAfter(_stallTimeout);
                var read = await body.ReadAsync(buffer, stall.Token);
                if (read == 0) break;
                md5.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                received += read;
                progress?.Report(new DownloadProgress(received, total));
            }
            if (total is { } expected && received != expected)
                throw new IOException($"{Url}: connection closed after {received} of {expected} bytes.");
            file.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            var reason = e is OperationCanceledException ? $"no data for {_stallTimeout.TotalSeconds:0} s" : e.Message;
            throw new IOException(
                $"Could not download CIFAR-10 from {Url} ({reason}). Offline? Put {FileName} into {CacheDirectory}, or extract it anywhere and pass --data DIR (or set {BaseUrlVariable} to a mirror).", e);
        }
        return Convert.ToHexStringLower(md5.GetHashAndReset());
    }

    private void Extract(string tarball, string batches)
    {
        var temp = Path.Combine(CacheDirectory, $".extract-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(temp);
            using (var file = File.OpenRead(tarball))
            using (var gzip = new GZipStream(file, CompressionMode.Decompress))
                TarFile.ExtractToDirectory(gzip, temp, overwriteFiles: false);
            var extracted = Cifar10Binary.FindBatchesDirectory(Path.Combine(temp, Cifar10Binary.FolderName))
                ?? throw new InvalidDataException($"{tarball}: the archive has no complete {Cifar10Binary.FolderName}/ folder.");
            try
            {
                Directory.Move(extracted, batches);
            }
            catch (IOException) when (Cifar10Binary.FindBatchesDirectory(batches) is not null)
            {
                // Another process (another rank on this machine) finished first; its copy is as good.
            }
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    private static async Task<string> Md5Async(string path, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(await MD5.HashDataAsync(file, cancellationToken));
    }
}

internal readonly record struct DownloadProgress(long Received, long? Total);
