namespace Trainer.Distributed;

/// <summary>
/// Sees every collective of a <see cref="ProcessGroup"/>: the flight recorder and the hang watch listen here.
/// Sequence numbers start at 1 and count the group's collectives in issue order, the same on every rank.
/// <see cref="Issued"/> runs on the issuing thread, <see cref="Completed"/> on whichever thread ends the collective;
/// both sit on the hot path, so they must neither block nor allocate.
/// </summary>
public interface ICollectiveObserver
{
    void Issued(long sequence, CollectiveKind kind, long bytes);

    void Completed(long sequence, bool succeeded);
}
