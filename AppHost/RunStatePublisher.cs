using System.Net.Http.Json;
using Microsoft.Extensions.Hosting;

namespace AppHost;

/// <summary>
/// Shows the run's progress as the state of the `run` resource: every 2 s it asks the training Dashboard (which hears
/// from every rank) for /api/runs/{id}/progress and publishes the text, until the run has ended.
/// </summary>
internal sealed class RunStatePublisher(TrainingRunResource run, EndpointReference dashboard, ResourceNotificationService notifications) : BackgroundService
{
    public const string ProgressProperty = "trainer.progress";
    public const string AccuracyProperty = "trainer.accuracy";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    private sealed record Progress(string Status, int Epoch, int Epochs, double? EtaSeconds, double? Accuracy, string Text);

    /// <summary>
    /// The Aspire dashboard humanizes state text (punctuation goes: "epoch 2/3" shows as "Epoch 2 3"), so the state says
    /// it in words and the full line goes into the trainer.progress property.
    /// </summary>
    internal static string StateText(string status, int epoch, int epochs, double? etaSeconds) => status switch
    {
        RunStatus.Running when epochs == 0 => "Starting",
        RunStatus.Running => $"Epoch {epoch} of {epochs}" + (etaSeconds is { } eta ? $" ETA {RunStatus.FormatDuration(eta)}" : ""),
        _ => char.ToUpperInvariant(status[0]) + status[1..],
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        string? published = null;
        var urlPublished = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (!dashboard.IsAllocated) continue;
            var runUrl = $"{dashboard.Url}/runs/{Uri.EscapeDataString(run.RunId)}";
            if (!urlPublished)
            {
                await notifications.PublishUpdateAsync(run, s => s with { Urls = [new UrlSnapshot("dashboard", runUrl, IsInternal: false) { DisplayProperties = new("Run in the Training Dashboard", 0) }] });
                urlPublished = true;
            }
            Progress? progress;
            try
            {
                using var response = await client.GetAsync($"{dashboard.Url}/api/runs/{Uri.EscapeDataString(run.RunId)}/progress", stoppingToken);
                if (!response.IsSuccessStatusCode) continue; // 404 until the first rank reports
                progress = await response.Content.ReadFromJsonAsync<Progress>(stoppingToken);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
            {
                if (stoppingToken.IsCancellationRequested) return;
                continue; // the Dashboard is starting, restarting or down: keep the last state
            }
            if (progress is null || progress.Text == published) continue;
            published = progress.Text;
            var style = progress.Status switch
            {
                RunStatus.Finished => KnownResourceStateStyles.Success,
                RunStatus.Stopped => KnownResourceStateStyles.Warn,
                RunStatus.Failed or RunStatus.Lost => KnownResourceStateStyles.Error,
                _ => KnownResourceStateStyles.Info,
            };
            var ended = RunStatus.IsFinal(progress.Status);
            await notifications.PublishUpdateAsync(run, s => s with
            {
                State = new ResourceStateSnapshot(StateText(progress.Status, progress.Epoch, progress.Epochs, progress.EtaSeconds), style),
                StopTimeStamp = ended ? DateTime.UtcNow : s.StopTimeStamp,
                Properties = [.. s.Properties.Where(p => p.Name is not (ProgressProperty or AccuracyProperty)),
                    new(ProgressProperty, progress.Text), new(AccuracyProperty, progress.Accuracy?.ToString("F4") ?? "–")],
            });
            if (ended) return;
        }
    }
}
