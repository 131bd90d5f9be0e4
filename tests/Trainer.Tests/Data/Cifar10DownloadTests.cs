using System.Security.Cryptography;
using Trainer.Data;

namespace Trainer.Tests.Data;

public sealed class Cifar10DownloadTests
{
    [Fact]
    public async Task Downloads_verifies_and_extracts_into_the_cache()
    {
        var tarball = CifarFiles.TarGz(perBatch: 3, test: 2);
        await using var server = new LocalHttpServer(tarball);
        using var cache = new TempDirectory();
        var progress = new List<DownloadProgress>();
        var download = new Cifar10Download(cache.Path, server.BaseUrl, Convert.ToHexStringLower(MD5.HashData(tarball)));

        var batches = await download.EnsureAsync(new SynchronousProgress(progress.Add));

        Assert.Equal(Path.Combine(cache.Path, Cifar10Binary.FolderName), batches);
        Assert.Equal("/data/cifar-10-binary.tar.gz", Assert.Single(server.Paths));
        var (train, valid) = Cifar10Binary.Load(batches);
        Assert.Equal(15, train.Count);
        Assert.Equal(2, valid.Count);
        Assert.Equal(tarball.Length, progress[^1].Received);
        Assert.Equal(tarball.Length, progress[^1].Total);
        // Only the extracted folder stays: no partial download, no temporary extraction folder.
        Assert.Equal([batches], Directory.GetFileSystemEntries(cache.Path));

        // A second call finds the cache and does not download again.
        Assert.Equal(batches, await download.EnsureAsync());
        Assert.Equal(1, server.Requests);
    }

    [Fact]
    public async Task A_wrong_checksum_is_a_clear_error_and_leaves_nothing_in_the_cache()
    {
        await using var server = new LocalHttpServer(CifarFiles.TarGz());
        using var cache = new TempDirectory();
        var download = new Cifar10Download(cache.Path, server.BaseUrl, Cifar10Download.PublishedMd5);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => download.EnsureAsync());

        Assert.Contains("MD5", error.Message);
        Assert.Contains(Cifar10Download.PublishedMd5, error.Message);
        Assert.Empty(Directory.GetFileSystemEntries(cache.Path));
    }

    [Fact]
    public async Task Offline_the_error_says_where_to_put_the_file()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var cache = new TempDirectory();
        var download = new Cifar10Download(cache.Path, $"http://127.0.0.1:{port}/", stallTimeout: TimeSpan.FromSeconds(10));

        var error = await Assert.ThrowsAsync<IOException>(() => download.EnsureAsync());

        Assert.Contains(cache.Path, error.Message);
        Assert.Contains(Cifar10Download.FileName, error.Message);
        Assert.Contains("--data", error.Message);
        Assert.Empty(Directory.GetFileSystemEntries(cache.Path));
    }

    [Fact]
    public async Task A_tarball_put_into_the_cache_by_hand_is_verified_and_extracted()
    {
        var tarball = CifarFiles.TarGz(perBatch: 2, test: 1);
        using var cache = new TempDirectory();
        File.WriteAllBytes(cache.Combine(Cifar10Download.FileName), tarball);
        var download = new Cifar10Download(cache.Path, "http://127.0.0.1:9/", Convert.ToHexStringLower(MD5.HashData(tarball)));

        var batches = await download.EnsureAsync();

        Assert.Equal(10, Cifar10Binary.Load(batches).Train.Count);
    }

    [Fact]
    public void The_cache_follows_XDG_CACHE_HOME()
    {
        var saved = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/somewhere/cache");
            Assert.Equal("/somewhere/cache/dotnet-ddp/cifar10", Cifar10Download.DefaultCacheDirectory());
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", null);
            Assert.EndsWith("/.cache/dotnet-ddp/cifar10", Cifar10Download.DefaultCacheDirectory());
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", saved);
        }
    }

    [Fact]
    public async Task The_data_bunch_downloads_from_the_given_url_into_the_XDG_cache_and_enforces_the_published_checksum()
    {
        // Same class as the other XDG_CACHE_HOME test: xunit runs one class's tests one after another.
        await using var server = new LocalHttpServer(CifarFiles.TarGz());
        using var cache = new TempDirectory();
        var saved = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", cache.Path);

            var error = await Assert.ThrowsAsync<InvalidDataException>(() =>
                DataBunch.LoadAsync("cifar10", data: null, dataUrl: server.BaseUrl, limitTrain: null, limitValid: null, seed: 0));

            Assert.Equal(1, server.Requests);
            Assert.Contains(server.BaseUrl + Cifar10Download.FileName, error.Message);
            Assert.Contains(Cifar10Download.PublishedMd5, error.Message);
            Assert.Empty(Directory.GetFiles(cache.Path, "*", SearchOption.AllDirectories));
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", saved);
        }
    }

    private sealed class SynchronousProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
