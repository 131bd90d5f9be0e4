using System.Diagnostics;
using TorchSharp;
using AdamW = TorchSharp.Modules.AdamW;
using DataLoader = Trainer.Data.DataLoader;
using Trainer.Data;
using Trainer.Telemetry;
using Trainer.Watchdog;
using static TorchSharp.torch;

namespace Trainer.Training;

/// <summary>
/// fastai's Learner for one rank: a model, its training and validation loaders, Adam with betas (0.9, 0.99)
/// and decoupled ("true") weight decay on every parameter, cross-entropy loss and the accuracy metric.
/// Data parallelism plugs in through <see cref="IDataParallel"/> and the loaders' samplers; progress,
/// checkpoints and telemetry through <see cref="ILearnerCallback"/>.
/// </summary>
internal sealed class Learner : IDisposable
{
    public const double Beta2 = 0.99;
    public const double Eps = 1e-8;

    private readonly List<ILearnerCallback> _callbacks;
    private readonly bool _onCpu;
    private readonly BatchTensors _trainTensors = new();
    private readonly BatchTensors _validTensors = new();
    private volatile bool _stopRequested;

    public Learner(nn.Module<Tensor, Tensor> model, DataLoader train, DataLoader valid, IEnumerable<ILearnerCallback>? callbacks = null, IDataParallel? parallel = null)
    {
        Model = model;
        Train = train;
        Valid = valid;
        Parallel = parallel ?? SingleProcess.Instance;
        Device = model.parameters().FirstOrDefault()?.device ?? CPU;
        _onCpu = Device.type == DeviceType.CPU;
        _callbacks = [.. callbacks ?? []];
        // fastai v1's default opt_func: partial(optim.Adam, betas=(0.9, 0.99)) with eps 1e-8; its true_wd step
        // p.mul_(1 - lr·wd) before the Adam update is exactly AdamW's, so TorchSharp's AdamW is the same optimizer.
        Optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-3, beta1: 0.9, beta2: Beta2, eps: Eps, weight_decay: 0);
    }

    public nn.Module<Tensor, Tensor> Model { get; }
    public DataLoader Train { get; }
    public DataLoader Valid { get; }
    public IDataParallel Parallel { get; internal set; }
    public AdamW Optimizer { get; }
    public IList<ILearnerCallback> Callbacks => _callbacks;

    /// <summary>Where the model lives (move it before creating the learner); batches are copied there.</summary>
    public Device Device { get; }

    public bool IsMain => Parallel.IsMain;

    /// <summary>Epochs completed (the epoch the next fit starts at); restored from a checkpoint.</summary>
    public int Epoch { get; internal set; }

    /// <summary>Optimizer steps taken: the position in the one-cycle schedule; restored from a checkpoint.</summary>
    public int Step { get; internal set; }

    /// <summary>The smoothed training loss (fastai's smooth_loss).</summary>
    public SmoothenValue TrainLoss { get; } = new();

    /// <summary>Every epoch of the run so far (fastai's Recorder), those of earlier processes too: restored from a checkpoint.</summary>
    public List<EpochSummary> History { get; } = [];

    /// <summary>Ends the fit after the current batch (a callback's stop_training, or Ctrl+C).</summary>
    public void RequestStop() => _stopRequested = true;

    /// <summary>
    /// fastai's fit_one_cycle(epochs, max_lr, moms, div_factor, pct_start, final_div, wd): one schedule over
    /// epochs × batches per epoch steps, continuing from <see cref="Epoch"/> and <see cref="Step"/>.
    /// </summary>
    public FitResult FitOneCycle(int epochs, double maxLr, double wd = 0, double divFactor = 25, double pctStart = 0.3,
        double momStart = 0.95, double momMid = 0.85, double? finalDiv = null, CancellationToken cancellationToken = default)
    {
        var batches = Train.BatchCount;
        if (batches == 0)
            throw new InvalidOperationException($"The training set gives no full batch: {Train.Sampler.Count} samples per rank with batch size {Train.BatchSize}; lower the batch size or use more data.");
        if ((long)epochs * batches > int.MaxValue)
            throw new InvalidOperationException($"{epochs} epochs × {batches} batches is more steps than the schedule can count ({int.MaxValue}); lower the epochs.");
        // A checkpoint taken mid-epoch resumes at the next batch of that epoch.
        var firstBatch = Step - Epoch * batches;
        if (firstBatch < 0 || firstBatch >= batches)
            throw new InvalidOperationException($"Step {Step} does not fall in epoch {Epoch} of {batches} batches: the checkpoint was made with another batch size or dataset.");
        var schedule = new OneCycleSchedule(epochs * batches, maxLr, divFactor, pctStart, momStart, momMid, finalDiv);
        using var cancelRegistration = cancellationToken.Register(RequestStop);
        _stopRequested = false;

        Parallel.OnFitStart(Model);
        Each(c => c.OnFitStart(new FitStart(epochs, Epoch, batches, schedule.TotalSteps, Train.BatchSize, Train.Sampler.Count, Valid.Sampler.Count)));
        var fitWatch = Stopwatch.StartNew();
        var results = new List<EpochResult>();
        long trainImages = 0;
        var trainTime = TimeSpan.Zero;
        var waitAtStart = Train.TotalWait;
        while (Epoch < epochs && !_stopRequested)
        {
            var epoch = Epoch;
            var epochWatch = Stopwatch.StartNew();
            var waitBefore = Train.TotalWait;
            Train.Sampler.SetEpoch(epoch);
            Valid.Sampler.SetEpoch(epoch);
            Each(c => c.OnEpochStart(epoch));

            Model.train();
            long images = 0;
            var done = 0;
            var batchWatch = Stopwatch.StartNew();
            var skipped = firstBatch;
            firstBatch = 0;
            WorkerProgress.Enter(TrainingPhase.Data);
            foreach (var batch in Train.GetBatches(epoch, skipped))
            {
                WorkerProgress.StepStarted(epoch, Step);
                using var stepSpan = TrainerTelemetry.StartStep(Step, epoch, batch.Index, Train.LastWait);
                var lr = schedule.LearningRate(Step);
                var mom = schedule.Momentum(Step);
                var loss = TrainBatch(batch, lr, mom, wd);
                Step++;
                WorkerProgress.StepEnded(Step);
                TrainLoss.Add(loss);
                images += batch.Count;
                done++;
                var seconds = batchWatch.Elapsed.TotalSeconds;
                batchWatch.Restart();
                var info = new BatchEnd(epoch, batch.Index, batches, Step, loss, TrainLoss.Smooth, lr, mom, batch.Count / seconds, Train.LastWait);
                batch.Dispose();
                Each(c => c.OnBatchEnd(info));
                WorkerProgress.Enter(TrainingPhase.Data);
                if (_stopRequested) break;
            }
            if (skipped + done < batches) break; // stopped mid-epoch: no validation, the epoch does not count
            var epochTrainTime = epochWatch.Elapsed;
            trainImages += images;
            trainTime += epochTrainTime;

            var validation = Validate(epoch);
            Parallel.OnEpochEnd(Model, epoch);
            Epoch = epoch + 1;
            var result = new EpochResult(epoch, epochs, TrainLoss.Smooth, validation.Loss, validation.Accuracy,
                images / epochTrainTime.TotalSeconds, epochTrainTime, epochWatch.Elapsed, Train.TotalWait - waitBefore);
            results.Add(result);
            History.Add(EpochSummary.From(result));
            Each(c => c.OnEpochEnd(result));
        }
        var fit = new FitResult(results, fitWatch.Elapsed, trainTime > TimeSpan.Zero ? trainImages / trainTime.TotalSeconds : 0,
            Train.TotalWait - waitAtStart, Epoch < epochs);
        WorkerProgress.Enter(TrainingPhase.Finishing);
        Each(c => c.OnFitEnd(fit));
        return fit;
    }

    /// <summary>Validation loss and accuracy, summed over the ranks' real samples before dividing.</summary>
    public ValidationResult Validate(int epoch)
    {
        WorkerProgress.Enter(TrainingPhase.Validation);
        using var span = TrainerTelemetry.Source.StartActivity(TrainerTelemetry.Spans.Validation)?.SetTag(TrainerTelemetry.Tags.Epoch, epoch);
        Model.eval();
        Span<double> sums = stackalloc double[3]; // loss sum, correct, samples
        using (no_grad())
        {
            foreach (var batch in Valid.GetBatches(epoch))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    if (batch.RealCount == 0) continue;
                    var (images, labels) = _validTensors.Load(batch);
                    var output = Model.forward(OnDevice(images)).narrow(0, 0, batch.RealCount);
                    var target = OnDevice(labels).narrow(0, 0, batch.RealCount);
                    sums[0] += nn.functional.cross_entropy(output, target, reduction: nn.Reduction.Sum).to_type(ScalarType.Float64).item<double>();
                    sums[1] += output.argmax(1).eq(target).sum().item<long>();
                    sums[2] += batch.RealCount;
                }
            }
        }
        Parallel.AllReduceSum(sums);
        var result = new ValidationResult(epoch, sums[0] / sums[2], sums[1] / sums[2], (long)sums[2]);
        Each(c => c.OnValidationEnd(result));
        return result;
    }

    internal double TrainBatch(Batch batch, double lr, double mom, double wd)
    {
        // Without a dispose scope every step leaks its tensors' native memory (~100 MB a step at k = 6).
        using var scope = NewDisposeScope();
        foreach (var group in Optimizer.ParamGroups.Cast<AdamW.ParamGroup>())
        {
            group.LearningRate = lr;
            group.Betas = (mom, Beta2);
            group.Options.weight_decay = wd;
        }
        var (images, labels) = _trainTensors.Load(batch);
        var input = OnDevice(images);
        var target = OnDevice(labels);
        // Phase spans exist only inside a sampled step's span (see TrainerTelemetry.StartStep); otherwise StartPhase is null.
        using (Parallel.WorldSize > 1 ? TrainerTelemetry.StartPhase(TrainerTelemetry.Spans.BroadcastBuffers) : null)
            Parallel.BeforeForward(Model);
        Tensor loss;
        using (TrainerTelemetry.StartPhase(TrainerTelemetry.Spans.ForwardBackward))
        {
            loss = nn.functional.cross_entropy(Model.forward(input), target);
            Optimizer.zero_grad();
            loss.backward();
        }
        NonFiniteCheck.PoisonIfNotFinite(Model, loss);
        WorkerProgress.Enter(TrainingPhase.AllReduce);
        Parallel.AfterBackward(Model);
        var value = loss.item<float>();
        NonFiniteCheck.ThrowIfDiverged(Model, Step + 1, value, Parallel.Rank);
        WorkerProgress.Enter(TrainingPhase.Optimizer);
        using (TrainerTelemetry.StartPhase(TrainerTelemetry.Spans.OptimizerStep))
            Optimizer.step();
        return value;
    }

    /// <summary>A batch tensor where the model is: on the CPU the tensor itself (no copy), on a GPU its copy there.</summary>
    private Tensor OnDevice(Tensor tensor) => _onCpu ? tensor : tensor.to(Device);

    private void Each(Action<ILearnerCallback> call)
    {
        foreach (var callback in _callbacks) call(callback);
    }

    public void Dispose()
    {
        _trainTensors.Dispose();
        _validTensors.Dispose();
        Optimizer.Dispose();
        (Parallel as IDisposable)?.Dispose();
    }
}
