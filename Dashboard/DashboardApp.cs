using Dashboard.Runs;

namespace Dashboard;

/// <summary>
/// The training Dashboard: trainers post their progress (<see cref="RunEndpoints"/>), the pages in wwwroot draw the
/// live run and the history from <see cref="RunStore"/>. The database is Dashboard:Database (configuration or
/// environment Dashboard__Database), by default $XDG_DATA_HOME/dotnet-ddp/dashboard.db.
/// </summary>
public static class DashboardApp
{
    public const string DatabaseKey = "Dashboard:Database";

    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.AddServiceDefaults();
        var database = builder.Configuration[DatabaseKey] is { Length: > 0 } path ? path : DefaultDatabase();
        builder.Services.AddSingleton(_ => new RunStore(database));

        var app = builder.Build();
        app.Logger.LogInformation("Run history in {Database}", Path.GetFullPath(database));
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.MapRunApi();
        // Client-side pages: /runs/{id} and /compare are the same static page shells, filled in from the API.
        app.MapGet("/runs/{runId}", () => Page("run.html"));
        app.MapGet("/compare", () => Page("compare.html"));
        app.MapDefaultEndpoints();
        return app;
    }

    private static IResult Page(string file) =>
        Results.File(Path.Combine(AppContext.BaseDirectory, "wwwroot", file), "text/html; charset=utf-8");

    private static string DefaultDatabase()
    {
        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "dotnet-ddp", "dashboard.db");
    }
}
