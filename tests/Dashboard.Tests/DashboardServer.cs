using Microsoft.AspNetCore.Builder;

namespace Dashboard.Tests;

/// <summary>The real Dashboard (Kestrel on a free 127.0.0.1 port) with its own SQLite file, hosted in the test process.</summary>
public sealed class DashboardServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _ownsDatabase;

    private DashboardServer(WebApplication app, string database, bool ownsDatabase)
    {
        _app = app;
        Database = database;
        _ownsDatabase = ownsDatabase;
    }

    public string Database { get; }

    public Uri BaseAddress => new(_app.Urls.First().TrimEnd('/') + "/");

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

    public static async Task<DashboardServer> StartAsync(string? database = null)
    {
        var owns = database is null;
        database ??= Path.Combine(Path.GetTempPath(), $"dashboard-tests-{Guid.NewGuid():N}", "dashboard.db");
        // No OTLP endpoint: nothing to export to in a test.
        var app = DashboardApp.Create(["--urls", "http://127.0.0.1:0", $"--{DashboardApp.DatabaseKey}={database}", "--OTEL_EXPORTER_OTLP_ENDPOINT="]);
        await app.StartAsync();
        return new DashboardServer(app, database, owns);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_ownsDatabase) Directory.Delete(Path.GetDirectoryName(Database)!, recursive: true);
    }
}
