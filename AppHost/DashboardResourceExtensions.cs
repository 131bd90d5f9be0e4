namespace AppHost;

/// <summary>Our training Dashboard as a resource, and the trainers' link to it.</summary>
public static class DashboardResourceExtensions
{
    /// <summary>
    /// Adds `dashboard` (Dashboard/), keeping its run history in <paramref name="database"/> (by default runs/dashboard.db,
    /// next to the runs' output folders, so the history outlives the app host).
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddTrainingDashboard(this IDistributedApplicationBuilder builder, string database) =>
        builder.AddProject<Projects.Dashboard>("dashboard")
            .WithEnvironment("Dashboard__Database", database)
            .WithUrlForEndpoint("http", url => url.DisplayText = "Training Dashboard (runs)");

    /// <summary>
    /// The trainer reports to the Dashboard through service discovery (services__dashboard__http__0) and links to its
    /// rank on the run's page. It does not wait for the Dashboard: a Dashboard that is down never holds training up.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithDashboard(this IResourceBuilder<ProjectResource> trainer,
        IResourceBuilder<ProjectResource> dashboard, string runId, int rank) =>
        trainer
            .WithReference(dashboard)
            .WithUrl(ReferenceExpression.Create($"{dashboard.GetEndpoint("http")}/runs/{Uri.EscapeDataString(runId)}#rank-{rank.ToString()}"), $"Run {runId} in the Training Dashboard");
}
