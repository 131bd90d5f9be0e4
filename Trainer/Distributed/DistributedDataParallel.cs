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
/// registration order (the order backward produces them), so every bucket is one contiguous slice, reduced in
/// place. Steady-state steps allocate nothing: slices and buffer views are made once. The buckets are reduced on
/// the calling thread after backward rather than overlapped with it: on CPU ranks that own their cores the
/// reduction competes with backward for the same cores, and bench/run measures it at a few percent of a step.
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
    private readonly Device _device;
    private readonly Tensor[] _bucketSlices;
    private readonly List<(Tensor[] Buffers, Tensor[] Slots, Tensor Flat)> _buffersByType = [];
    private readonly bool _buffersRequireGrad;
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
        _bucketSlices = [.. _buckets.Select(b => _flatGradients.narrow(0, b.Offset, b.Length))];

        foreach (var byType in model.buffers().GroupBy(b => b.dtype))
        {
            var buffers = byType.ToArray();
            var flat = empty(buffers.Sum(b => b.numel()), byType.Key, buffers[0].device);
            var slots = new Tensor[buffers.Length];
            long at = 0;
            for (var i = 0; i < buffers.Length; i++)
            {
                slots[i] = flat.narrow(0, at, buffers[i].numel()).view(buffers[i].shape);
                at += buffers[i].numel();
            }
            _buffersByType.Add((buffers, slots, flat));
            _buffersRequireGrad |= buffers.Any(b => b.requires_grad);
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
        foreach (var slice in _bucketSlices)
            _group.AllReduce(slice, ReduceOp.Avg);
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
    private unsafe void AttachGradients()
    {
        for (var i = 0; i < _parameters.Length; i++)
        {
            if (TensorMemory.GradientAddress(_parameters[i]) == TensorMemory.Address(_gradientViews[i])) continue; // the usual case, without allocating
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
        // Buffers normally do not require grad, so the copies record nothing; no_grad() would allocate every step.
        using var _ = _buffersRequireGrad ? no_grad() : null;
        foreach (var (buffers, slots, flat) in _buffersByType)
        {
            if (Rank == 0)
                for (var i = 0; i < buffers.Length; i++)
                    slots[i].copy_(buffers[i]);
            _group.Broadcast(flat, root: 0);
            if (Rank == 0) continue;
            for (var i = 0; i < buffers.Length; i++)
                buffers[i].copy_(slots[i]);
        }
    }

    public void Dispose()
    {
        foreach (var parameter in _parameters.Where(p => !p.IsInvalid)) parameter.grad = null;
        foreach (var view in _gradientViews) view.Dispose();
        foreach (var slice in _bucketSlices) slice.Dispose();
        _flatGradients.Dispose();
        foreach (var (_, slots, flat) in _buffersByType)
        {
            foreach (var slot in slots) slot.Dispose();
            flat.Dispose();
        }
    }

    private sealed class Scope(Action onDispose) : IDisposable
    {
        private Action? _onDispose = onDispose;

        public void Dispose() => Interlocked.Exchange(ref _onDispose, null)?.Invoke();
    }
}
