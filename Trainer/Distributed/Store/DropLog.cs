using Microsoft.Extensions.Logging;

namespace Trainer.Distributed.Store;

/// <summary>
/// The store's warnings about dropped connections, at most <see cref="Burst"/> per <see cref="Window"/>: a flood of
/// hostile connections must not flood the logs (and the disk and dashboard behind them). What is held back is
/// counted and reported in one line when the next window opens.
/// </summary>
internal sealed class DropLog(ILogger logger)
{
    public const int Burst = 20;
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    private readonly Lock _lock = new();
    private DateTime _windowStart = DateTime.MinValue;
    private int _logged;
    private long _suppressed;

    public void Dropped(object? remote, string reason)
    {
        long suppressed;
        lock (_lock)
        {
            var now = DateTime.UtcNow;
            suppressed = 0;
            if (now - _windowStart >= Window)
            {
                suppressed = _suppressed;
                _suppressed = 0;
                _logged = 0;
                _windowStart = now;
            }
            if (_logged >= Burst)
            {
                _suppressed++;
                return;
            }
            _logged++;
        }
        if (suppressed > 0)
            logger.LogWarning("store: {Count} more connections were dropped in the last {Seconds:0} s without a line each", suppressed, Window.TotalSeconds);
        logger.LogWarning("store: dropped connection from {Remote}: {Reason}", remote, reason);
    }
}
