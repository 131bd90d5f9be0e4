using System.Net.Http.Json;
using System.Threading.Channels;
using Dashboard.Runs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Instrumentation.Http;

namespace Trainer.Telemetry;

/// <summary>
/// Posts a rank's progress to the training Dashboard without ever slowing training: points go into a bounded queue
/// (<see cref="Add"/> never blocks; when the queue is full the point is dropped and counted) and one background task
/// drains it, a post at most every <c>interval</c>, each with its own timeout. A post that fails (Dashboard down,
/// slow or answering an error) drops its points, counts them, and the task backs off; training never notices.
/// </summary>
internal sealed class DashboardReporter : IAsyncDisposable
{
    /// <summary>The Aspire service name; the app host's WithReference(dashboard) sets services__dashboard__http__0.</summary>
    public const string ServiceName = "dashboard";
    public const string ClientName = "trainer-dashboard";
    public const int DefaultCapacity = 4096;
    private const int MaxPointsPerPost = 2000;
    private const string ReportsPath = "/reports";

    private readonly HttpClient _client;
    private readonly string _path;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _requestTimeout;
    private readonly Channel<object> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completing = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _loop;
    private RankStart? _start;
    private FitInfo? _fit;
    private long _dropped;
    private long _sent;
    private long _failedPosts;

    public DashboardReporter(HttpClient client, string runId, int rank, int capacity = DefaultCapacity, TimeSpan? interval = null, TimeSpan? requestTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _client = client;
        _path = $"api/runs/{Uri.EscapeDataString(runId)}/ranks/{rank}{ReportsPath}";
        _interval = interval ?? TimeSpan.FromMilliseconds(500);
        _requestTimeout = requestTimeout ?? TimeSpan.FromSeconds(5);
        _queue = Channel.CreateBounded<object>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Points that could not be delivered: queue full, or their post failed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Points the Dashboard accepted.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    public long FailedPosts => Interlocked.Read(ref _failedPosts);

    /// <summary>
    /// The Dashboard's client when this process was launched with a reference to it (services:dashboard:* in
    /// configuration); by hand, without one, nothing is registered and nothing will be posted.
    /// </summary>
    public static void AddClient(IHostApplicationBuilder builder)
    {
        if (!IsConfigured(builder.Configuration)) return;
        // No retries (ServiceDefaults gives every client the standard resilience handler): a post that fails is
        // dropped and the next one carries on. RemoveAllResilienceHandlers is marked experimental, not unsupported.
#pragma warning disable EXTEXP0001
        builder.Services.AddHttpClient(ClientName, client => client.BaseAddress = new Uri($"http://{ServiceName}"))
            .RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001
        // Two posts a second per rank: neither a log line nor a trace each (failures still log as warnings).
        builder.Logging.AddFilter($"System.Net.Http.HttpClient.{ClientName}", LogLevel.Warning);
        builder.Services.Configure<HttpClientTraceInstrumentationOptions>(options =>
        {
            var previous = options.FilterHttpRequestMessage;
            options.FilterHttpRequestMessage = request =>
                request.RequestUri?.AbsolutePath.EndsWith(ReportsPath, StringComparison.Ordinal) != true && (previous?.Invoke(request) ?? true);
        });
    }

    public static bool IsConfigured(IConfiguration configuration) => configuration.GetSection($"services:{ServiceName}").Exists();

    /// <summary>A reporter for this rank, or null when the process has no Dashboard.</summary>
    public static DashboardReporter? Create(IServiceProvider services, string runId, int rank)
    {
        var configuration = services.GetRequiredService<IConfiguration>();
        if (!IsConfigured(configuration)) return null;
        return new DashboardReporter(services.GetRequiredService<IHttpClientFactory>().CreateClient(ClientName), runId, rank);
    }

    /// <summary>Who this rank is; sent with every post until one is accepted.</summary>
    public void Start(RankStart start) => Volatile.Write(ref _start, start);

    public void Fit(FitInfo fit) => Volatile.Write(ref _fit, fit);

    /// <summary>Queues a <see cref="BatchPoint"/>, <see cref="EpochPoint"/> or <see cref="RankEnd"/>; false (and counted) when dropped.</summary>
    public bool Add(object point)
    {
        if (point is not (BatchPoint or EpochPoint or RankEnd))
            throw new ArgumentException($"{point.GetType().Name} is not a Dashboard point.", nameof(point));
        if (_queue.Writer.TryWrite(point)) return true;
        CountDropped(1);
        return false;
    }

    /// <summary>Stops accepting points and gives the queue up to <paramref name="timeout"/> to be delivered; then gives up.</summary>
    public async Task CompleteAsync(TimeSpan timeout)
    {
        _queue.Writer.TryComplete();
        _completing.TrySetResult();
        if (await Task.WhenAny(_loop, Task.Delay(timeout)) != _loop)
            await _stop.CancelAsync();
        await _loop;
    }

    public async ValueTask DisposeAsync()
    {
        await CompleteAsync(TimeSpan.Zero);
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var backoff = TimeSpan.Zero;
        var points = new List<object>();
        try
        {
            while (await _queue.Reader.WaitToReadAsync(_stop.Token))
            {
                if (backoff > TimeSpan.Zero || _interval > TimeSpan.Zero)
                    await WaitOrCompleted(backoff > _interval ? backoff : _interval);
                points.Clear();
                while (points.Count < MaxPointsPerPost && _queue.Reader.TryRead(out var point)) points.Add(point);
                if (await PostAsync(points))
                    backoff = TimeSpan.Zero;
                else
                    backoff = TimeSpan.FromSeconds(Math.Clamp(backoff.TotalSeconds * 2, 1, 10));
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        // Whatever is left when we give up is dropped too.
        var left = 0;
        while (_queue.Reader.TryRead(out _)) left++;
        CountDropped(left);
    }

    /// <summary>Waits out the interval or back-off, unless the reporter is completing (then what is left goes at once).</summary>
    private async Task WaitOrCompleted(TimeSpan delay)
    {
        if (_completing.Task.IsCompleted) return;
        await Task.WhenAny(Task.Delay(delay, _stop.Token), _completing.Task);
        _stop.Token.ThrowIfCancellationRequested();
    }

    private async Task<bool> PostAsync(List<object> points)
    {
        var start = Volatile.Read(ref _start);
        var fit = Volatile.Read(ref _fit);
        var report = new RankReport(start, fit, [.. points.OfType<BatchPoint>()], [.. points.OfType<EpochPoint>()],
            points.OfType<RankEnd>().LastOrDefault(), Dropped);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_requestTimeout);
        try
        {
            using var response = await _client.PostAsJsonAsync(_path, report, RankReportJson.Default.RankReport, timeout.Token);
            response.EnsureSuccessStatusCode();
        }
        catch (Exception)
        {
            // Down, slow, refusing or broken: every failure is a drop, never an exception in the trainer.
            Interlocked.Increment(ref _failedPosts);
            CountDropped(points.Count);
            return false;
        }
        Interlocked.CompareExchange(ref _start, null, start);
        Interlocked.CompareExchange(ref _fit, null, fit);
        Interlocked.Add(ref _sent, points.Count);
        return true;
    }

    private void CountDropped(int count)
    {
        if (count == 0) return;
        Interlocked.Add(ref _dropped, count);
        TrainerTelemetry.DashboardDropped.Add(count, TrainerTelemetry.Identity);
    }
}
