using System.Diagnostics;
using System.Diagnostics.Metrics;
using Trainer.Distributed;

namespace Trainer.Telemetry;

/// <summary>
/// The trainer's OpenTelemetry surface in one place: the <see cref="ActivitySource"/> and <see cref="Meter"/> (both
/// named "Trainer", which ServiceDefaults subscribes to with "Trainer*"), every span and instrument name, and the
/// tags that say which rank a signal came from. Names follow OpenTelemetry's conventions (dotted lower case,
/// UCUM units, no unit in the name).
/// </summary>
internal static class TrainerTelemetry
{
    public const string Name = "Trainer";

    /// <summary>Only every Nth optimizer step gets a span (with its phases as children): spans are cheap, not free.</summary>
    public const int DefaultStepSampleEvery = 20;

    /// <summary><see cref="DefaultStepSampleEvery"/>; tests lower it to see sampled steps in a short fit.</summary>
    internal static int StepSampleEvery { get; set; } = DefaultStepSampleEvery;

    public static class Spans
    {
        public const string Run = "trainer.run";
        public const string Epoch = "trainer.epoch";
        public const string Step = "trainer.step";
        public const string DataWait = "trainer.step.data_wait";
        public const string BroadcastBuffers = "trainer.step.broadcast_buffers";
        public const string ForwardBackward = "trainer.step.forward_backward";
        public const string AllReduce = "trainer.step.all_reduce";
        public const string OptimizerStep = "trainer.step.optimizer";
        public const string Validation = "trainer.validation";
        public const string Checkpoint = "trainer.checkpoint";
    }

    public static class Tags
    {
        public const string Rank = "trainer.rank";
        public const string LocalRank = "trainer.local_rank";
        public const string WorldSize = "trainer.world_size";
        public const string RunId = "trainer.run_id";
        public const string Epoch = "trainer.epoch";
        public const string Step = "trainer.step";
        public const string Batch = "trainer.batch";
        public const string AllReduceBytes = "trainer.allreduce.bytes";
        public const string AllReduceBuckets = "trainer.allreduce.buckets";
        public const string CheckpointPath = "trainer.checkpoint.path";
        public const string CheckpointBytes = "trainer.checkpoint.bytes";
    }

    public static readonly ActivitySource Source = new(Name);
    public static readonly Meter Meter = new(Name);

    private static readonly InstrumentAdvice<double> SecondsBuckets = new()
    {
        HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    };

    public static readonly Gauge<double> TrainLoss = Meter.CreateGauge<double>("trainer.train.loss", "1", "Smoothed training loss (fastai's smooth_loss) after the latest step.");
    public static readonly Gauge<double> ValidationLoss = Meter.CreateGauge<double>("trainer.validation.loss", "1", "Validation loss over all ranks after the latest epoch.");
    public static readonly Gauge<double> ValidationAccuracy = Meter.CreateGauge<double>("trainer.validation.accuracy", "1", "Validation accuracy over all ranks after the latest epoch (0..1).");
    public static readonly Gauge<double> LearningRate = Meter.CreateGauge<double>("trainer.learning_rate", "1", "Learning rate of the latest step (one-cycle schedule).");
    public static readonly Gauge<double> Momentum = Meter.CreateGauge<double>("trainer.momentum", "1", "Momentum (Adam's beta1) of the latest step.");
    public static readonly Gauge<double> Throughput = Meter.CreateGauge<double>("trainer.throughput", "{image}/s", "Training images per second on this rank, over the latest step.");
    public static readonly Gauge<int> Epoch = Meter.CreateGauge<int>("trainer.epoch", "{epoch}", "Epochs completed.");
    public static readonly Histogram<double> StepDuration = Meter.CreateHistogram("trainer.step.duration", "s", "Wall time of one training step, data wait included.", advice: SecondsBuckets);
    public static readonly Histogram<double> DataWait = Meter.CreateHistogram("trainer.data.wait.duration", "s", "Time a step waited for its batch from the data loader.", advice: SecondsBuckets);
    public static readonly Histogram<double> AllReduceDuration = Meter.CreateHistogram("trainer.allreduce.duration", "s", "Time a step spent averaging gradients across ranks.", advice: SecondsBuckets);
    public static readonly Counter<long> AllReduceSize = Meter.CreateCounter<long>("trainer.allreduce.size", "By", "Gradient bytes all-reduced.");
    public static readonly Histogram<double> CheckpointDuration = Meter.CreateHistogram("trainer.checkpoint.duration", "s", "Time to write a checkpoint.", advice: SecondsBuckets);
    public static readonly Counter<long> Steps = Meter.CreateCounter<long>("trainer.steps", "{step}", "Optimizer steps taken.");
    public static readonly Counter<long> Images = Meter.CreateCounter<long>("trainer.images", "{image}", "Training images processed on this rank.");
    public static readonly Counter<long> DashboardDropped = Meter.CreateCounter<long>("trainer.dashboard.dropped", "{report}", "Reports to the training Dashboard dropped (queue full, or the Dashboard down or slow).");

    static TrainerTelemetry()
    {
        Meter.CreateObservableGauge("trainer.process.memory.usage", () => new Measurement<long>(Environment.WorkingSet, Identity),
            "By", "Resident memory of this rank's process (native tensors included).");
        Meter.CreateObservableGauge("trainer.gpu.memory.usage", GpuMemory.Measure,
            "By", "Memory in use on this rank's GPU (device-wide, as nvidia-smi shows it); absent on CPU.");
    }

    /// <summary>This process's identity as metric tags (rank and run id), so the Aspire dashboard can filter per rank.</summary>
    public static KeyValuePair<string, object?>[] Identity { get; private set; } = IdentityOf(0, "none");

    /// <summary>Called once by the command that owns the process, before anything is recorded.</summary>
    public static void SetIdentity(DistributedContract contract) => Identity = IdentityOf(contract.Rank, contract.RunId);

    public static KeyValuePair<string, object?>[] IdentityOf(int rank, string runId) =>
        [new(Tags.Rank, rank), new(Tags.RunId, runId)];

    /// <summary>The run's root span, tagged with the full torchrun identity.</summary>
    public static Activity? StartRun(DistributedContract contract, string command)
    {
        var activity = Source.StartActivity(Spans.Run, ActivityKind.Internal);
        activity?.SetTag(Tags.Rank, contract.Rank)
            .SetTag(Tags.LocalRank, contract.LocalRank)
            .SetTag(Tags.WorldSize, contract.WorldSize)
            .SetTag(Tags.RunId, contract.RunId)
            .SetTag("trainer.command", command);
        return activity;
    }

    /// <summary>
    /// A span for every <see cref="StepSampleEvery"/>th step (null otherwise, or with no listener). It starts when the
    /// step began waiting for its batch, with that wait as its first child.
    /// </summary>
    public static Activity? StartStep(int step, int epoch, int batch, TimeSpan dataWait)
    {
        if (step % StepSampleEvery != 0 || !Source.HasListeners()) return null;
        var now = DateTimeOffset.UtcNow;
        var activity = Source.StartActivity(Spans.Step, ActivityKind.Internal, parentContext: default, startTime: now - dataWait);
        if (activity is null) return null;
        activity.SetTag(Tags.Step, step).SetTag(Tags.Epoch, epoch).SetTag(Tags.Batch, batch);
        using (var wait = Source.StartActivity(Spans.DataWait, ActivityKind.Internal, activity.Context, startTime: now - dataWait))
            wait?.SetEndTime(now.UtcDateTime);
        return activity;
    }

    /// <summary>A child span for one phase of a sampled step; null (free) when the current step is not sampled.</summary>
    public static Activity? StartPhase(string name) =>
        Activity.Current is { OperationName: Spans.Step } ? Source.StartActivity(name) : null;
}
