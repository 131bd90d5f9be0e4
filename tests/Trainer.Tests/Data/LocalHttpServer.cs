using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Trainer.Tests.Data;

/// <summary>
/// A tiny HTTP/1.1 server on 127.0.0.1 (an ephemeral port) that answers every GET with one body: enough to
/// test a download without the internet. Each connection is served once, with timeouts, then closed.
/// </summary>
internal sealed class LocalHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly byte[] _body;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public LocalHttpServer(byte[] body)
    {
        _body = body;
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    public string BaseUrl => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/data/";

    public int Requests => Volatile.Read(ref _requests);

    public List<string> Paths { get; } = [];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            using (client)
            {
                try
                {
                    await ServeAsync(client.GetStream());
                }
                catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
                {
                    // The client went away; serve the next one.
                }
            }
        }
    }

    private async Task ServeAsync(NetworkStream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        var request = new StringBuilder();
        var buffer = new byte[1024];
        while (!request.ToString().Contains("\r\n\r\n"))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0) return;
            request.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        Interlocked.Increment(ref _requests);
        lock (Paths) Paths.Add(request.ToString().Split(' ')[1]);
        var header = $"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {_body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(header), timeout.Token);
        await stream.WriteAsync(_body, timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _loop.WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
