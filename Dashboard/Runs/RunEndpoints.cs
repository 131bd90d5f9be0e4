using System.Text.RegularExpressions;

namespace Dashboard.Runs;

/// <summary>The Dashboard's HTTP API: trainers post reports; the pages and the app host read runs and progress.</summary>
public static partial class RunEndpoints
{
    public const int MaxRank = 65535;

    public static IEndpointRouteBuilder MapRunApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/runs");
        api.MapPost("/{runId}/ranks/{rank:int}/reports", (string runId, int rank, RankReport report, RunStore store) =>
        {
            if (Invalid(runId, rank) is { } problem) return problem;
            if (report.Start is { WorldSize: < 1 } || report.Start is { } s && rank >= s.WorldSize)
                return Results.BadRequest($"rank {rank} with worldSize {report.Start.WorldSize}: the rank must be 0..worldSize-1.");
            store.Add(runId, rank, report);
            return Results.NoContent();
        });
        api.MapGet("/", (RunStore store) => Results.Ok(store.List()));
        // ?afterStep=N: only the steps after N in the curves (everything else whole), for pages that already hold the rest.
        api.MapGet("/{runId}", (string runId, int? afterStep, RunStore store) =>
            Invalid(runId, 0) ?? (store.Get(runId, afterStep) is { } run ? Results.Ok(run) : NotFound(runId)));
        api.MapGet("/{runId}/progress", (string runId, RunStore store) =>
            Invalid(runId, 0) ?? (store.Progress(runId) is { } progress ? Results.Ok(progress) : NotFound(runId)));
        return app;
    }

    private static IResult NotFound(string runId) => Results.NotFound($"run '{runId}' has not reported to this Dashboard.");

    private static IResult? Invalid(string runId, int rank)
    {
        if (!RunIdPattern().IsMatch(runId))
            return Results.BadRequest($"run id '{runId}': use 1 to 128 letters, digits, '.', '_', ':' or '-' (TORCHELASTIC_RUN_ID).");
        if (rank is < 0 or > MaxRank)
            return Results.BadRequest($"rank {rank}: must be 0..{MaxRank}.");
        return null;
    }

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex RunIdPattern();
}
