using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Trainer.Tests.Distributed;

/// <summary>Keeps every log line ("Warning: message") so a test can assert that something was reported.</summary>
internal sealed class CapturingLogger : ILogger
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyList<string> Lines => [.. _lines];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _lines.Enqueue($"{logLevel}: {formatter(state, exception)}");

    /// <summary>Waits (polling, up to <paramref name="timeout"/>) for a line containing every fragment.</summary>
    public async Task<string> WaitForLineAsync(TimeSpan timeout, params string[] fragments)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var line = _lines.FirstOrDefault(candidate => fragments.All(fragment => candidate.Contains(fragment, StringComparison.Ordinal)));
            if (line is not null)
                return line;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no log line with [{string.Join(" | ", fragments)}] within {timeout.TotalSeconds} s; lines:\n{string.Join("\n", _lines)}");
            await Task.Delay(20);
        }
    }
}
