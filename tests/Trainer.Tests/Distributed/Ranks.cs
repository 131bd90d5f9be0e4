using System.Net;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

/// <summary>A world of CPU process groups whose ranks are threads of the test, connected over real loopback sockets.</summary>
internal sealed class Ranks : IDisposable
{
    private Ranks(ProcessGroup[] groups) => Groups = groups;

    public ProcessGroup[] Groups { get; }

    public ProcessGroup this[int rank] => Groups[rank];

    public static async Task<Ranks> CreateAsync(int worldSize, TimeSpan? timeout = null, long? ringScratchBytes = null)
    {
        var store = new InMemoryStore();
        var options = new ProcessGroupOptions { Backend = Backend.Cpu, Timeout = timeout ?? TimeSpan.FromSeconds(60), KeyPrefix = "test" };
        if (ringScratchBytes is { } scratch)
            options = options with { RingScratchBytes = scratch };
        var joining = Enumerable.Range(0, worldSize)
            .Select(rank => Task.Run(() => ProcessGroup.CreateAsync(options, store, rank, worldSize, IPAddress.Loopback)))
            .ToArray();
        try
        {
            return new Ranks(await Task.WhenAll(joining).WaitAsync(TimeSpan.FromSeconds(60)));
        }
        catch
        {
            foreach (var done in joining.Where(t => t.IsCompletedSuccessfully))
                done.Result.Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="body"/> for every rank on its own thread and returns each rank's result or exception.</summary>
    public Outcome<T>[] Run<T>(Func<ProcessGroup, T> body, TimeSpan? limit = null)
    {
        var outcomes = new Outcome<T>[Groups.Length];
        var threads = Groups.Select((group, rank) => new Thread(() =>
        {
            try
            {
                outcomes[rank] = new Outcome<T>(body(group), null);
            }
            catch (Exception e)
            {
                outcomes[rank] = new Outcome<T>(default, e);
            }
        })
        { IsBackground = true, Name = $"rank {rank}" }).ToArray();
        foreach (var thread in threads)
            thread.Start();
        var deadline = DateTime.UtcNow + (limit ?? TimeSpan.FromSeconds(120));
        for (var rank = 0; rank < threads.Length; rank++)
            if (!threads[rank].Join(Max(deadline - DateTime.UtcNow, TimeSpan.Zero)))
                throw new TimeoutException($"Rank {rank} did not finish within the test's limit: a collective hung.");
        return outcomes;
    }

    /// <summary>Runs <paramref name="body"/> on every rank and rethrows the first failure.</summary>
    public T[] RunAll<T>(Func<ProcessGroup, T> body, TimeSpan? limit = null)
    {
        var outcomes = Run(body, limit);
        var failed = outcomes.Select((o, rank) => (o.Error, rank)).FirstOrDefault(x => x.Error is not null);
        if (failed.Error is not null)
            throw new AggregateException($"Rank {failed.rank} failed: {failed.Error.Message}", failed.Error);
        return outcomes.Select(o => o.Value!).ToArray();
    }

    public void RunAll(Action<ProcessGroup> body, TimeSpan? limit = null) => RunAll(group =>
    {
        body(group);
        return true;
    }, limit);

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public void Dispose()
    {
        foreach (var group in Groups)
            group.Dispose();
    }
}

internal readonly record struct Outcome<T>(T? Value, Exception? Error);
