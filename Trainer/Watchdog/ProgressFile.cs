using System.Diagnostics;
using System.IO.MemoryMappedFiles;
using Trainer.Distributed;

namespace Trainer.Watchdog;

/// <summary>
/// A page of memory shared by a worker and its agent through a small mapped file: the worker writes where it is
/// (a heartbeat, its phase and step, and its last <see cref="Capacity"/> collectives), the agent reads it to judge
/// whether the worker hangs and, after any failure, to tell what every collective was doing, even when the worker
/// is frozen or already dead. Plain aligned 64-bit stores: a torn read is impossible, a stale one harmless.
/// Times are monotonic <see cref="Stopwatch"/> timestamps, the same clock in both processes.
/// </summary>
internal sealed unsafe class ProgressFile : IDisposable
{
    public const string Variable = "TRAINER_PROGRESS_FILE";

    /// <summary>Collectives kept, newest last.</summary>
    public const int Capacity = 32;

    private const long Magic = 0x31_47_4F_52_50_50_44_44; // "DDPPROG1"
    private const int Size = 4096;
    private const int EntryLongs = 6;
    private const int RingStart = 16;

    private enum Field
    {
        Magic, Pid, Heartbeat, Progress, Phase, Epoch, Step, StepsThisProcess, LongestStep, StepStarted, Issued, Completed,
    }

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long* _words;

    private ProgressFile(string path, MemoryMappedFile map)
    {
        Path = path;
        _map = map;
        _view = map.CreateViewAccessor(0, Size);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _words = (long*)(pointer + _view.PointerOffset);
    }

    public string Path { get; }

    /// <summary>The agent's side: a fresh, zeroed file at <paramref name="path"/> for one worker.</summary>
    public static ProgressFile Create(string path)
    {
        using (var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite))
            file.SetLength(Size);
        return new ProgressFile(path, MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, Size, MemoryMappedFileAccess.ReadWrite));
    }

    /// <summary>The worker's side: the file its agent created.</summary>
    public static ProgressFile Open(string path)
    {
        var progress = new ProgressFile(path, MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, Size, MemoryMappedFileAccess.ReadWrite));
        progress.Set(Field.Pid, Environment.ProcessId);
        progress.Set(Field.Magic, Magic);
        progress.Beat();
        progress.Set(Field.Progress, Stopwatch.GetTimestamp());
        return progress;
    }

    public void Beat() => Set(Field.Heartbeat, Stopwatch.GetTimestamp());

    public void Enter(TrainingPhase phase)
    {
        Set(Field.Phase, (long)phase);
        Moved();
    }

    public void StepStarted(int epoch, int step)
    {
        Set(Field.Epoch, epoch);
        Set(Field.Step, step);
        Set(Field.StepStarted, Stopwatch.GetTimestamp());
        Enter(TrainingPhase.Forward);
    }

    public void StepEnded(int step)
    {
        var now = Stopwatch.GetTimestamp();
        Set(Field.Step, step);
        Set(Field.LongestStep, Math.Max(Get(Field.LongestStep), now - Get(Field.StepStarted)));
        Set(Field.StepsThisProcess, Get(Field.StepsThisProcess) + 1);
        Set(Field.Progress, now);
    }

    public void Issued(long sequence, CollectiveKind kind, long bytes)
    {
        var entry = Entry(sequence);
        Volatile.Write(ref entry[0], 0); // invalid while it is rewritten
        entry[1] = (long)kind;
        entry[2] = bytes;
        entry[3] = Stopwatch.GetTimestamp();
        entry[4] = 0;
        entry[5] = (long)CollectiveState.Running;
        Volatile.Write(ref entry[0], sequence);
        Set(Field.Issued, sequence);
        Moved();
    }

    public void Completed(long sequence, bool succeeded)
    {
        var entry = Entry(sequence);
        if (Volatile.Read(ref entry[0]) == sequence)
        {
            entry[4] = Stopwatch.GetTimestamp();
            Volatile.Write(ref entry[5], (long)(succeeded ? CollectiveState.Finished : CollectiveState.Failed));
        }
        if (succeeded)
            Set(Field.Completed, Math.Max(Get(Field.Completed), sequence));
        Moved();
    }

    /// <summary>What the worker last wrote; null before it opened the file.</summary>
    public ProgressSnapshot? Read()
    {
        if (Get(Field.Magic) != Magic)
            return null;
        var collectives = new List<CollectiveRecord>(Capacity);
        for (var i = 0; i < Capacity; i++)
        {
            var entry = _words + RingStart + i * EntryLongs;
            var sequence = Volatile.Read(ref entry[0]);
            if (sequence <= 0) continue;
            var record = new CollectiveRecord(sequence, (CollectiveKind)entry[1], entry[2], entry[3], entry[4], (CollectiveState)Volatile.Read(ref entry[5]));
            if (Volatile.Read(ref entry[0]) == sequence)
                collectives.Add(record);
        }
        collectives.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        return new ProgressSnapshot((int)Get(Field.Pid), Get(Field.Heartbeat), Get(Field.Progress), (TrainingPhase)Get(Field.Phase), (int)Get(Field.Epoch),
            (int)Get(Field.Step), Get(Field.StepsThisProcess), Get(Field.LongestStep), Get(Field.Issued), Get(Field.Completed), collectives);
    }

    private long* Entry(long sequence) => _words + RingStart + (int)(sequence % Capacity) * EntryLongs;

    private void Moved() => Set(Field.Progress, Stopwatch.GetTimestamp());

    private long Get(Field field) => Volatile.Read(ref _words[(int)field]);

    private void Set(Field field, long value) => Volatile.Write(ref _words[(int)field], value);

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}

internal enum CollectiveState : long
{
    Running = 0,
    Finished = 1,
    Failed = 2,
}

/// <summary>One collective as the worker recorded it; times are monotonic timestamps (0 = not yet).</summary>
internal readonly record struct CollectiveRecord(long Sequence, CollectiveKind Kind, long Bytes, long Started, long Finished, CollectiveState State);

/// <summary>A worker's progress at one moment, read by its agent.</summary>
internal sealed record ProgressSnapshot(
    int Pid, long Heartbeat, long Progress, TrainingPhase Phase, int Epoch, int Step, long StepsThisProcess, long LongestStep,
    long Issued, long Completed, IReadOnlyList<CollectiveRecord> Collectives)
{
    /// <summary>A collective was issued that has not finished: the worker waits on its peers (or they on it).</summary>
    public bool InCollective => Issued > Completed && Collectives.Any(c => c.Sequence == Issued && c.State == CollectiveState.Running);
}
