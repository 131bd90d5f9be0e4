using System.Diagnostics.Metrics;

namespace Trainer.Elastic;

/// <summary>The agent's telemetry: restarts so far and the current restart round (TORCHELASTIC_RESTART_COUNT of its worker).</summary>
internal sealed class ElasticMetrics : IDisposable
{
    public const string MeterName = "Trainer.Elastic";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _restarts;
    private int _round;

    public ElasticMetrics(int rank)
    {
        KeyValuePair<string, object?> rankTag = new("trainer.rank", rank);
        _restarts = _meter.CreateCounter<long>("trainer.elastic.restarts", unit: "{restart}", description: "Restarts of the whole group after a failure.");
        _meter.CreateObservableGauge("trainer.elastic.restart_count", () => new Measurement<int>(Volatile.Read(ref _round), rankTag), unit: "{round}",
            description: "The restart round the worker runs in (TORCHELASTIC_RESTART_COUNT).");
        RankTag = rankTag;
    }

    private KeyValuePair<string, object?> RankTag { get; }

    public void RoundStarted(int round)
    {
        Volatile.Write(ref _round, round);
        if (round > 0) _restarts.Add(1, RankTag);
    }

    public void Dispose() => _meter.Dispose();
}
