using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;

namespace Trainer.Tests.Telemetry;

/// <summary>
/// A stand-in Dashboard on 127.0.0.1: records every report body it accepts. It can answer the first
/// <c>failFirst</c> posts with 503, or hold every request for <c>delay</c> before answering (a slow Dashboard).
/// </summary>
internal sealed class ReportSink : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly TimeSpan _delay;
    private int _failFirst;

    public ReportSink(int failFirst = 0, TimeSpan? delay = null)
    {
        _failFirst = failFirst;
        _delay = delay ?? TimeSpan.Zero;
        var port = FreeTcpPort.Next();
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(BaseAddress.ToString());
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    public Uri BaseAddress { get; }

    public ConcurrentQueue<(string Path, JsonElement Body)> Accepted { get; } = new();

    public int Requests;

    public IEnumerable<JsonElement> Points(string kind) =>
        Accepted.SelectMany(r => r.Body.GetProperty(kind).EnumerateArray());

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().WaitAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(context));
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        Interlocked.Increment(ref Requests);
        try
        {
            if (_delay > TimeSpan.Zero) await Task.Delay(_delay, _stop.Token);
            using var body = await JsonDocument.ParseAsync(context.Request.InputStream);
            if (Interlocked.Decrement(ref _failFirst) >= 0)
            {
                context.Response.StatusCode = 503;
            }
            else
            {
                Accepted.Enqueue((context.Request.Url!.AbsolutePath, body.RootElement.Clone()));
                context.Response.StatusCode = 204;
            }
            context.Response.Close();
        }
        catch (Exception)
        {
            context.Response.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        try { await _loop; } catch (Exception) { }
        _stop.Dispose();
    }
}
