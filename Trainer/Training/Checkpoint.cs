using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Trainer.Faults;
using Trainer.Runtime;
using Trainer.Telemetry;

namespace Trainer.Training;

/// <summary>
/// A learner's whole training state in one file: model parameters and buffers, optimizer state, schedule
/// position (step), completed epochs, the smoothed loss, torch's RNG state and the recipe that produced it.
/// Layout: "DDPCKPT1", format version (int32), payload length (int64), SHA-256 of the payload (32 bytes),
/// payload. Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
/// old file (which may first be kept as the previous checkpoint), so a crash never leaves a half-written
/// checkpoint; loads verify length and checksum first and throw <see cref="CorruptCheckpointException"/>.
/// Tensors are stored without their device (TorchSharp writes a GPU tensor through a CPU copy and loads into the
/// tensor where it lives), so a checkpoint made on a GPU resumes on the CPU and the other way round.
/// </summary>
internal static class Checkpoint
{
    public const string FileName = "checkpoint.ckpt";
    private const int FormatVersion = 1;
    private static readonly byte[] Magic = "DDPCKPT1"u8.ToArray();
    private static readonly int HeaderSize = Magic.Length + sizeof(int) + sizeof(long) + SHA256.HashSizeInBytes;

    private static int s_saves;

    /// <summary>
    /// Saves <paramref name="learner"/>'s state with <paramref name="recipe"/> (JSON of the options that shape the run).
    /// With <paramref name="previousPath"/>, the checkpoint being replaced is renamed there first (after the new one is
    /// safely on disk), so one good older checkpoint always survives a later corruption.
    /// </summary>
    /// <exception cref="CheckpointWriteException">The file could not be written (disk full, no permission); the old checkpoint is untouched.</exception>
    public static void Save(string path, Learner learner, string recipe, string? previousPath = null)
    {
        using var span = TrainerTelemetry.Source.StartActivity(TrainerTelemetry.Spans.Checkpoint)?.SetTag(TrainerTelemetry.Tags.CheckpointPath, path);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var save = Interlocked.Increment(ref s_saves);
        using var payload = new MemoryStream();
        using (var writer = new BinaryWriter(payload, Encoding.UTF8, leaveOpen: true))
        {
            var info = new CheckpointInfo(learner.Epoch, learner.Step, learner.TrainLoss.Count, learner.TrainLoss.MovingAverage, recipe, DateTimeOffset.UtcNow,
                [.. learner.History]);
            writer.Write(JsonSerializer.Serialize(info, TrainerJson.Default.CheckpointInfo));
            learner.Model.save(writer);
            learner.Optimizer.save_state_dict(writer);
            using var rng = torch.get_rng_state();
            var state = rng.bytes;
            writer.Write(state.Length);
            writer.Write(state);
        }
        var body = payload.GetBuffer().AsSpan(0, (int)payload.Length);

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $"{TemporaryPrefix(path)}{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                Span<byte> header = stackalloc byte[HeaderSize];
                Magic.CopyTo(header);
                BitConverter.TryWriteBytes(header[Magic.Length..], FormatVersion);
                BitConverter.TryWriteBytes(header[(Magic.Length + sizeof(int))..], (long)body.Length);
                SHA256.HashData(body, header[(Magic.Length + sizeof(int) + sizeof(long))..]);
                file.Write(header);
                if (FaultInjection.Armed(FaultPoint.Checkpoint, save) || FaultInjection.Armed(FaultPoint.DiskFull, save))
                {
                    file.Write(body[..(body.Length / 2)]);
                    file.Flush(flushToDisk: true);
                    FaultInjection.StrikeIfArmed(FaultPoint.Checkpoint, save);
                    throw new IOException($"No space left on device (simulated by {FaultInjection.Variable})");
                }
                file.Write(body);
                file.Flush(flushToDisk: true);
            }
            if (previousPath is not null && File.Exists(path))
                File.Move(path, previousPath, overwrite: true);
            File.Move(temporary, path, overwrite: true);
            span?.SetTag(TrainerTelemetry.Tags.CheckpointBytes, HeaderSize + body.Length);
            TrainerTelemetry.CheckpointDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, TrainerTelemetry.Identity);
            Posix.FsyncDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointWriteException(
                $"could not write the checkpoint {path}: {e.Message}; the previous checkpoint is kept. Free space in {directory} or choose another --output.", e);
        }
        finally
        {
            TryDelete(temporary);
        }
    }

    /// <summary>Deletes the temporary files that writers of <paramref name="path"/> left behind when they were killed mid-write.</summary>
    public static void RemoveTemporaryFiles(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory)) return;
        foreach (var stale in Directory.EnumerateFiles(directory, TemporaryPrefix(path) + "*.tmp"))
            TryDelete(stale);
    }

    private static string TemporaryPrefix(string path) => $".{Path.GetFileName(path)}.";

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Leftovers are removed at the next start.
        }
    }

    /// <summary>Reads only the metadata (epoch, step, recipe), after verifying the file.</summary>
    public static CheckpointInfo ReadInfo(string path)
    {
        using var reader = OpenVerified(path);
        return ReadInfo(reader, path);
    }

    /// <summary>Restores <paramref name="learner"/> to the saved state; throws <see cref="InvalidDataException"/> naming the file if it is corrupt.</summary>
    public static CheckpointInfo Load(string path, Learner learner)
    {
        using var reader = OpenVerified(path);
        var info = ReadInfo(reader, path);
        try
        {
            learner.Model.load(reader, strict: true);
            learner.Optimizer.load_state_dict(reader);
            var state = reader.ReadBytes(reader.ReadInt32());
            using var rng = torch.tensor(state, torch.ScalarType.Byte);
            torch.set_rng_state(rng);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or InvalidOperationException or IOException)
        {
            throw new InvalidDataException($"{path}: does not fit this model ({e.Message}); was it saved with another --width?", e);
        }
        learner.Epoch = info.Epoch;
        learner.Step = info.Step;
        learner.TrainLoss.Restore(info.SmoothCount, info.SmoothMovingAverage);
        learner.History.Clear();
        learner.History.AddRange(info.History ?? []);
        return info;
    }

    private static BinaryReader OpenVerified(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"{path}: no checkpoint there.", path, e);
        }
        if (bytes.Length < HeaderSize || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new CorruptCheckpointException($"{path}: not a trainer checkpoint (bad header); delete it or point --output elsewhere.");
        var version = BitConverter.ToInt32(bytes, Magic.Length);
        if (version != FormatVersion)
            throw new InvalidDataException($"{path}: checkpoint format {version} is not the supported {FormatVersion}.");
        var length = BitConverter.ToInt64(bytes, Magic.Length + sizeof(int));
        if (length != bytes.Length - HeaderSize)
            throw new CorruptCheckpointException($"{path}: truncated or corrupt: the header promises {length} payload bytes, the file has {bytes.Length - HeaderSize}; delete it to start over.");
        var expected = bytes.AsSpan(Magic.Length + sizeof(int) + sizeof(long), SHA256.HashSizeInBytes);
        if (!SHA256.HashData(bytes.AsSpan(HeaderSize)).AsSpan().SequenceEqual(expected))
            throw new CorruptCheckpointException($"{path}: corrupt: the SHA-256 checksum of the payload does not match; delete it to start over.");
        return new BinaryReader(new MemoryStream(bytes, HeaderSize, bytes.Length - HeaderSize, writable: false), Encoding.UTF8);
    }

    private static CheckpointInfo ReadInfo(BinaryReader reader, string path) =>
        JsonSerializer.Deserialize(reader.ReadString(), TrainerJson.Default.CheckpointInfo)
        ?? throw new InvalidDataException($"{path}: corrupt metadata.");
}

/// <summary>The file is not a complete, intact checkpoint (bad header, truncated, checksum mismatch): an older one may still be good.</summary>
internal sealed class CorruptCheckpointException(string message) : IOException(message);

/// <summary>Saving a checkpoint failed; the message names the file, the reason and that the previous checkpoint is kept.</summary>
internal sealed class CheckpointWriteException(string message, Exception inner) : IOException(message, inner);

/// <summary>
/// A checkpoint's metadata. <paramref name="Recipe"/> is the JSON of the options that shape the run;
/// <paramref name="History"/> the epochs finished so far, so that a resumed run's summary covers all of them.
/// </summary>
internal sealed record CheckpointInfo(int Epoch, int Step, int SmoothCount, double SmoothMovingAverage, string Recipe, DateTimeOffset SavedAt,
    IReadOnlyList<EpochSummary>? History = null);
