using System.Security.Cryptography;
using TorchSharp;
using Trainer.Training;
using static TorchSharp.torch;

namespace Trainer.Distributed;

/// <summary>
/// torch.nn.parallel.DistributedDataParallel for the <see cref="Learner"/>: rank 0's parameters and buffers are
/// broadcast at the start, BatchNorm buffers before every forward (PyTorch's broadcast_buffers=True), and after
/// every backward the gradients are averaged across ranks in buckets of at most <see cref="BucketCapBytes"/>.
/// The gradients live in one flat, reused buffer: each <c>p.grad</c> is a view into it, laid out in reverse
/// registration order (the order backward produces them), so every bucket is one contiguous slice whose
/// all-reduce starts as soon as it is issued while the next ones queue behind it.
/// </summary>
internal sealed class DistributedDataParallel : IDataParallel, IDisposable
{
    /// <summary>PyTorch's bucket_cap_mb default, 25 MiB.</summary>
    public const long DefaultBucketCapBytes = 25L * 1024 * 1024;

    private readonly ProcessGroup _group;
    private readonly nn.Module _model;
    private readonly TorchSharp.Modules.Parameter[] _parameters;
    private readonly Tensor _flatGradients;
    private readonly Tensor[] _gradientViews;
    private readonly (long Offset, long Length)[] _buckets;
    private readonly Work[] _inFlight;
    private readonly Dictionary<ScalarType, (Tensor[] Buffers, Tensor Flat)> _buffersByType = new();
    private readonly Device _device;
    private int _noSync;

    public DistributedDataParallel(ProcessGroup group, nn.Module model, long bucketCapBytes = DefaultBucketCapBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketCapBytes, 1, nameof(bucketCapBytes));
        _group = group;
        _model = model;
        BucketCapBytes = bucketCapBytes;
        _parameters = [.. model.parameters().Where(p => p.requires_grad)];
        if (_parameters.Length == 0)
            throw new ArgumentException("DistributedDataParallel needs a model with trainable parameters.", nameof(model));
        var dtype = _parameters[0].dtype;
        var device = _device = _parameters[0].device;
        if (_parameters.FirstOrDefault(p => p.dtype != dtype || p.device_type != device.type || p.device_index != device.index) is { } odd)
            throw new ArgumentException($"All trainable parameters must share one dtype and device ({dtype} on {device}); found {odd.dtype} on {odd.device}.", nameof(model));

        _flatGradients = zeros(_parameters.Sum(p => p.numel()), dtype, device);
        _gradientViews = new Tensor[_parameters.Length];
        var buckets = new List<(long, long)>();
        long offset = 0, bucketStart = 0;
        var elementSize = _flatGradients.ElementSize;
        for (var i = _parameters.Length - 1; i >= 0; i--)
        {
            var numel = _parameters[i].numel();
            if (offset > bucketStart && (offset - bucketStart + numel) * elementSize > bucketCapBytes)
            {
                buckets.Add((bucketStart, offset - bucketStart));
                bucketStart = offset;
            }
            _gradientViews[i] = _flatGradients.narrow(0, offset, numel).view(_parameters[i].shape);
            offset += numel;
        }
        buckets.Add((bucketStart, offset - bucketStart));
        _buckets = [.. buckets];
        _inFlight = new Work[_buckets.Length];

        foreach (var group2 in model.buffers().GroupBy(b => b.dtype))
        {
            var buffers = group2.ToArray();
            _buffersByType[group2.Key] = (buffers, empty(buffers.Sum(b => b.numel()), group2.Key, buffers[0].device));
        }
    }

    public int Rank => _group.Rank;

    public int WorldSize => _group.WorldSize;

    public long BucketCapBytes { get; }

    /// <summary>Bucket sizes in elements, in the order they are reduced.</summary>
    public IReadOnlyList<long> BucketLengths => [.. _buckets.Select(b => b.Length)];

    /// <summary>Bytes all-reduced per step (the whole flat gradient).</summary>
    public long GradientBytes => _flatGradients.numel() * _flatGradients.ElementSize;

    /// <summary>Total time spent in gradient all-reduce, for telemetry and benchmarks.</summary>
    public TimeSpan AllReduceTime { get; private set; }

    /// <summary>Gradient synchronisation off while the returned scope lives (DDP's no_sync, for gradient accumulation).</summary>
    public IDisposable NoSync()
    {
        _noSync++;
        return new Scope(() => _noSync--);
    }

    public void OnFitStart(nn.Module model)
    {
        using (no_grad())
        {
            foreach (var parameter in _parameters)
                _group.Broadcast(parameter, root: 0);
        }
        BroadcastBuffers();
        AttachGradients();
    }

    public void BeforeForward(nn.Module model) => BroadcastBuffers();

    public void AfterBackward(nn.Module model)
    {
        if (_noSync > 0) return;
        AttachGradients();
        using var span = Telemetry.TrainerTelemetry.StartPhase(Telemetry.TrainerTelemetry.Spans.AllReduce)?
            .SetTag(Telemetry.TrainerTelemetry.Tags.AllReduceBytes, GradientBytes).SetTag(Telemetry.TrainerTelemetry.Tags.AllReduceBuckets, _buckets.Length);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var b = 0; b < _buckets.Length; b++)
        {
            using var slice = _flatGradients.narrow(0, _buckets[b].Offset, _buckets[b].Length);
            _inFlight[b] = _group.AllReduceAsync(slice, ReduceOp.Avg);
        }
        foreach (var work in _inFlight) work.Wait();
        AllReduceTime += System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    public void AllReduceSum(Span<double> values)
    {
        using var tensor = torch.tensor(values.ToArray(), ScalarType.Float64, _device);
        _group.AllReduce(tensor, ReduceOp.Sum);
        using var host = OnCpu(tensor);
        host.data<double>().CopyTo(values);
    }

    /// <summary>
    /// The seed's promise, checked: all replicas hold identical parameters. Every rank hashes its parameters and
    /// the hashes are all-gathered; any difference stops the run, naming the ranks that diverged.
    /// </summary>
    public void OnEpochEnd(nn.Module model, int epoch)
    {
        using var hash = torch.tensor(new[] { ParameterHash() }, device: _device);
        using var all = _group.AllGather(hash);
        using var host = OnCpu(all);
        var hashes = host.data<long>().ToArray();
        var diverged = Enumerable.Range(0, hashes.Length).Where(r => hashes[r] != hashes[0]).ToArray();
        if (diverged.Length > 0)
            throw new DistributedException(
                $"Replicas diverged after epoch {epoch + 1}: the parameters of rank(s) {string.Join(", ", diverged)} differ from rank 0's. " +
                "Every rank must run the same model, recipe and seed; this is a bug if they did.");
    }

    internal long ParameterHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (no_grad())
        {
            foreach (var parameter in _parameters)
            {
                using var cpu = parameter.detach().cpu().contiguous();
                sha.AppendData(cpu.bytes);
            }
        }
        return BitConverter.ToInt64(sha.GetHashAndReset(), 0);
    }

    /// <summary>Points every p.grad at its view of the flat buffer. Module.zero_grad() (set_to_none) drops the views; this restores them.</summary>
    private void AttachGradients()
    {
        for (var i = 0; i < _parameters.Length; i++)
        {
            using var grad = _parameters[i].grad;
            if (grad is not null && grad.Handle != IntPtr.Zero && SameMemory(grad, _gradientViews[i])) continue;
            if (grad is not null)
                _gradientViews[i].copy_(grad);
            else
                _gradientViews[i].zero_();
            _parameters[i].grad = _gradientViews[i];
        }
    }

    /// <summary>The tensor's values readable on the host: a copy from the GPU, or (on the CPU) a second handle to the same tensor.</summary>
    private static Tensor OnCpu(Tensor tensor) => tensor.device_type == DeviceType.CPU ? tensor.alias() : tensor.cpu();

    private static unsafe bool SameMemory(Tensor a, Tensor b) => TensorMemory.Address(a) == TensorMemory.Address(b);

    private void BroadcastBuffers()
    {
        if (WorldSize == 1) return;
        using var _ = no_grad();
        foreach (var (buffers, flat) in _buffersByType.Values)
        {
            long offset = 0;
            if (Rank == 0)
                foreach (var buffer in buffers)
                {
                    using var target = flat.narrow(0, offset, buffer.numel());
                    target.copy_(buffer.reshape(-1));
                    offset += buffer.numel();
                }
            _group.Broadcast(flat, root: 0);
            if (Rank == 0) continue;
            offset = 0;
            foreach (var buffer in buffers)
            {
                using var source = flat.narrow(0, offset, buffer.numel());
                using var shaped = source.view(buffer.shape);
                buffer.copy_(shaped);
                offset += buffer.numel();
            }
        }
    }

    public void Dispose()
    {
        foreach (var parameter in _parameters.Where(p => !p.IsInvalid)) parameter.grad = null;
        foreach (var view in _gradientViews) view.Dispose();
        _flatGradients.Dispose();
        foreach (var (_, flat) in _buffersByType.Values) flat.Dispose();
    }

    private sealed class Scope(Action onDispose) : IDisposable
    {
        private Action? _onDispose = onDispose;

        public void Dispose() => Interlocked.Exchange(ref _onDispose, null)?.Invoke();
    }
}
