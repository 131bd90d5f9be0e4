using Trainer.Distributed;

namespace Trainer.Faults;

/// <summary>Strikes at the armed <see cref="FaultPoint.Collective"/> fault the moment collective number "at" is issued, then passes every call on.</summary>
internal sealed class FaultInjectingObserver(ICollectiveObserver? inner) : ICollectiveObserver
{
    public void Issued(long sequence, CollectiveKind kind, long bytes)
    {
        inner?.Issued(sequence, kind, bytes);
        if (sequence <= int.MaxValue)
            FaultInjection.StrikeIfArmed(FaultPoint.Collective, (int)sequence);
    }

    public void Completed(long sequence, bool succeeded) => inner?.Completed(sequence, succeeded);
}
