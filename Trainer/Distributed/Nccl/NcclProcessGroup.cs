using System.Diagnostics;
using TorchSharp;
using Trainer.Distributed.Store;

namespace Trainer.Distributed.Nccl;

/// <summary>
/// Collectives on CUDA tensors through NCCL, one GPU per process (device LOCAL_RANK). Collectives are queued on the
/// default CUDA stream, the one TorchSharp computes on, so they are ordered after the kernels that produced their
/// inputs. Waiting polls the completion event and ncclCommGetAsyncError; a failure or the timeout aborts the
/// communicator, which releases the peers blocked inside NCCL.
/// </summary>
internal sealed class NcclProcessGroup : ProcessGroup
{
    private static readonly IntPtr DefaultStream = IntPtr.Zero;
    private readonly NcclCommunicatorHandle communicator;
    private readonly int device;
    private readonly TimeSpan timeout;
    private readonly long timeoutTicks;
    private readonly Lock issue = new();
    private readonly torch.Tensor barrierWord;
    private readonly CudaEventHandle syncEvent;
    private readonly ICollectiveObserver? observer;
    private long sequence;

    private NcclProcessGroup(int rank, int worldSize, int device, TimeSpan timeout, NcclCommunicatorHandle communicator, ICollectiveObserver? observer)
    {
        this.observer = observer;
        Rank = rank;
        WorldSize = worldSize;
        this.device = device;
        this.timeout = timeout;
        timeoutTicks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        this.communicator = communicator;
        barrierWord = torch.zeros(1, torch.ScalarType.Float32, new torch.Device(DeviceType.CUDA, device));
        syncEvent = CudaEventHandle.Create();
    }

    public override int Rank { get; }
    public override int WorldSize { get; }
    public override Backend Backend => Backend.Nccl;
    public override torch.Device Device => new(DeviceType.CUDA, device);

    public static async Task<ProcessGroup> ConnectAsync(ProcessGroupOptions options, IStore store, int rank, int worldSize, CancellationToken cancellationToken)
    {
        var problem = NcclAvailability.Probe();
        if (problem is not null)
            throw new DistributedException(problem);
        NcclException.CheckCuda(Interop.Cuda.GetDeviceCount(out var devices), "cudaGetDeviceCount");
        var device = options.LocalRank;
        if (device >= devices)
            throw new DistributedException(
                $"LOCAL_RANK {device} has no CUDA device: this machine has {devices}. Start at most {devices} ranks per machine (LOCAL_WORLD_SIZE), or use Backend.Cpu.");
        var deadline = Stopwatch.GetTimestamp() + (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);

        NcclUniqueId id;
        const string idKey = "nccl/unique_id";
        if (rank == 0)
        {
            NcclException.CheckCuda(Interop.Cuda.SetDevice(device), "cudaSetDevice");
            NcclException.Check(Interop.Nccl.GetUniqueId(out id), "ncclGetUniqueId");
            await store.SetAsync(idKey, id.ToArray(), cancellationToken);
        }
        else
        {
            try
            {
                id = NcclUniqueId.FromBytes(await store.GetAsync(idKey, Remaining(deadline), cancellationToken));
            }
            catch (TimeoutException)
            {
                throw new CollectiveTimeoutException($"Rank 0 did not publish the NCCL unique id (key '{idKey}') within {options.Timeout}.", 0);
            }
        }

        // ncclCommInitRank blocks until every rank called it and cannot be cancelled, so first wait in the store
        // until all ranks are alive, then run it on its own thread so the timeout still holds.
        const string arrivedKey = "nccl/arrived";
        var arrived = await store.AddAsync(arrivedKey, 1, cancellationToken);
        while (arrived < worldSize)
        {
            if (Stopwatch.GetTimestamp() >= deadline)
                throw new CollectiveTimeoutException($"Only {arrived} of {worldSize} ranks reached NCCL initialisation within {options.Timeout}.", null);
            await Task.Delay(10, cancellationToken);
            arrived = await store.AddAsync(arrivedKey, 0, cancellationToken);
        }

        var initialised = new TaskCompletionSource<NcclCommunicatorHandle>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                NcclException.CheckCuda(Interop.Cuda.SetDevice(device), "cudaSetDevice");
                NcclException.Check(Interop.Nccl.CommInitRank(out var communicator, worldSize, id, rank), "ncclCommInitRank");
                initialised.SetResult(communicator);
            }
            catch (Exception e)
            {
                initialised.SetException(e);
            }
        })
        { IsBackground = true, Name = $"ncclCommInitRank rank {rank}" };
        thread.Start();
        NcclCommunicatorHandle handle;
        try
        {
            handle = await initialised.Task.WaitAsync(Remaining(deadline), cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new CollectiveTimeoutException($"ncclCommInitRank did not finish within {options.Timeout} on rank {rank}; another rank may have died during initialisation.", null);
        }
        NcclException.CheckCuda(Interop.Cuda.SetDevice(device), "cudaSetDevice");
        return new NcclProcessGroup(rank, worldSize, device, options.Timeout, handle, options.Observer);
    }

    /// <summary>Queues the collective on the stream after the kernels before it; blocking waits for it, else the returned work does.</summary>
    private protected override unsafe Work Issue(in Collective collective, bool blocking)
    {
        // A blocking collective reuses one event; an asynchronous one gets its own, which its work destroys once waited for.
        var cudaEvent = blocking ? syncEvent : CudaEventHandle.Create();
        Issued issued;
        try
        {
            var tensor = collective.Kind == CollectiveKind.Barrier ? barrierWord : collective.Tensor!;
            var dataType = DataType(tensor.dtype)!.Value;
            var data = TensorMemory.Address(tensor);
            lock (issue)
            {
                // NCCL has no barrier; like PyTorch, all-reduce one word and wait for it.
                issued = BeginIssue(collective.Kind, collective.Kind == CollectiveKind.Barrier ? sizeof(float) : collective.Bytes, cudaEvent);
                issued = collective.Kind switch
                {
                    CollectiveKind.Broadcast => EndIssue(Interop.Nccl.Broadcast(data, data, (nuint)tensor.numel(), dataType, collective.Root, communicator, DefaultStream), "ncclBroadcast", issued),
                    CollectiveKind.AllGather => EndIssue(Interop.Nccl.AllGather(TensorMemory.Address(collective.Input!), data, (nuint)collective.Input!.numel(), dataType, communicator, DefaultStream),
                        "ncclAllGather", issued),
                    _ => EndIssue(Interop.Nccl.AllReduce(data, data, (nuint)tensor.numel(), dataType, RedOp(collective.Op), communicator, DefaultStream), "ncclAllReduce", issued),
                };
            }
        }
        catch
        {
            if (!blocking)
                cudaEvent.Dispose();
            throw;
        }
        if (!blocking)
            return new NcclWork(this, issued, Deadline());
        WaitFor(issued, Deadline());
        return Work.Completed;
    }

    private static NcclRedOp RedOp(ReduceOp op) => op switch
    {
        ReduceOp.Sum => NcclRedOp.Sum,
        ReduceOp.Avg => NcclRedOp.Avg,
        ReduceOp.Max => NcclRedOp.Max,
        _ => NcclRedOp.Min,
    };

    /// <summary>A collective queued on the stream: the event recorded after it, and its sequence number.</summary>
    internal readonly record struct Issued(CudaEventHandle Event, long Sequence);

    private Issued BeginIssue(CollectiveKind kind, long bytes, CudaEventHandle completion)
    {
        ThrowIfUnusable();
        try
        {
            NcclException.CheckCuda(Interop.Cuda.SetDevice(device), "cudaSetDevice");
        }
        catch (DistributedException e)
        {
            throw Fail(e);
        }
        var issued = new Issued(completion, ++sequence);
        observer?.Issued(issued.Sequence, kind, bytes);
        return issued;
    }

    private Issued EndIssue(NcclResult enqueued, string call, Issued issued)
    {
        try
        {
            NcclException.Check(enqueued, call, communicator);
            NcclException.CheckCuda(Interop.Cuda.EventRecord(issued.Event, DefaultStream), "cudaEventRecord");
        }
        catch (DistributedException e)
        {
            observer?.Completed(issued.Sequence, false);
            throw Fail(e);
        }
        return issued;
    }

    /// <summary>Waits for <paramref name="issued"/>, and tells the observer how it ended.</summary>
    internal void WaitFor(Issued issued, long deadline)
    {
        var succeeded = false;
        try
        {
            WaitFor(issued.Event, deadline);
            succeeded = true;
        }
        finally
        {
            observer?.Completed(issued.Sequence, succeeded);
        }
    }

    internal bool Query(CudaEventHandle completion) => Interop.Cuda.EventQuery(completion) != Interop.Cuda.ErrorNotReady;

    /// <summary>Waits for the event; polls NCCL's asynchronous error and the deadline meanwhile, aborting the communicator on either.</summary>
    private void WaitFor(CudaEventHandle completion, long deadline)
    {
        var spins = 0;
        while (true)
        {
            var state = Interop.Cuda.EventQuery(completion);
            if (state == Interop.Cuda.Success)
                return;
            if (state != Interop.Cuda.ErrorNotReady)
                throw Fail(new DistributedException($"A collective on rank {Rank} failed on the GPU: CUDA error {state}."));
            ThrowIfFailed();
            NcclException.Check(Interop.Nccl.CommGetAsyncError(communicator, out var asyncError), "ncclCommGetAsyncError", communicator);
            if (asyncError is not (NcclResult.Success or NcclResult.InProgress))
                throw Fail(NcclException.Create(asyncError, $"A collective on rank {Rank}", communicator));
            if (Stopwatch.GetTimestamp() >= deadline)
                throw Fail(new CollectiveTimeoutException($"An NCCL collective did not finish within {timeout} on rank {Rank}; a rank is stalled or died. The communicator was aborted.", null));
            if (++spins < 200)
                Thread.SpinWait(50);
            else
                Thread.Sleep(spins < 2000 ? 0 : 1);
        }
    }

    private protected override void CheckTensor(torch.Tensor tensor, string operation, string parameter)
    {
        if (tensor.device_type != DeviceType.CUDA || tensor.device_index != device)
            throw new ArgumentException(
                $"The NCCL backend's {operation} on rank {Rank} needs a tensor on cuda:{device} (got a {TensorMemory.Describe(tensor)}); move it with .to(torch.CUDA({device})).",
                parameter);
        if (DataType(tensor.dtype) is null)
            throw new ArgumentException(
                $"The NCCL backend's {operation} does not support {TensorMemory.Describe(tensor)}; use float32, float64, float16, bfloat16, int64, int32, int8 or uint8.",
                parameter);
    }

    private static NcclDataType? DataType(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float32 => NcclDataType.Float32,
        torch.ScalarType.Float64 => NcclDataType.Float64,
        torch.ScalarType.Float16 => NcclDataType.Float16,
        torch.ScalarType.BFloat16 => NcclDataType.Bfloat16,
        torch.ScalarType.Int64 => NcclDataType.Int64,
        torch.ScalarType.Int32 => NcclDataType.Int32,
        torch.ScalarType.Int8 => NcclDataType.Int8,
        torch.ScalarType.Byte => NcclDataType.Uint8,
        _ => null,
    };

    private long Deadline() => Stopwatch.GetTimestamp() + timeoutTicks;

    /// <summary>ncclCommAbort: releases this rank's kernels, so the peers fail too. Under the issue lock: never while a call is being queued.</summary>
    private protected override void OnFailed(DistributedException error)
    {
        lock (issue)
        {
            communicator.MarkBroken();
            communicator.Dispose();
        }
    }

    private static TimeSpan Remaining(long deadline) =>
        TimeSpan.FromSeconds(Math.Max(0, deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);

    public override void Dispose()
    {
        lock (issue)
        {
            if (IsDisposed)
                return;
            MarkDisposed();
            syncEvent.Dispose();
            barrierWord.Dispose();
            communicator.Dispose();
        }
    }
}
