using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Trainer.Telemetry;
using Trainer.Tests.Training;

namespace Trainer.Tests.Telemetry;

/// <summary>A real (tiny) fit with listeners on the Trainer meter and activity source.</summary>
[Collection(nameof(TelemetryCollection))]
public sealed class TelemetryCallbackTests
{
    [Fact]
    public void A_fit_records_the_metrics_tagged_with_the_rank_and_spans_for_epochs_sampled_steps_and_validation()
    {
        var measurements = new ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == TrainerTelemetry.Meter) listener.EnableMeasurementEvents(instrument);
        };
        meters.SetMeasurementEventCallback<double>((i, v, tags, _) => measurements.Enqueue((i.Name, v, Tags(tags))));
        meters.SetMeasurementEventCallback<long>((i, v, tags, _) => measurements.Enqueue((i.Name, v, Tags(tags))));
        meters.SetMeasurementEventCallback<int>((i, v, tags, _) => measurements.Enqueue((i.Name, v, Tags(tags))));
        meters.Start();
        var spans = new ConcurrentQueue<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source == TrainerTelemetry.Source,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(activities);

        // 3 epochs of 4 steps, every 5th sampled: steps 0, 5 and 10.
        using var learner = TinyLearner.Create(trainImages: 32, validImages: 8, batchSize: 8);
        learner.Callbacks.Add(new TelemetryCallback(learner, "telemetry-test", NullLogger.Instance));
        TrainerTelemetry.StepSampleEvery = 5;
        ActivityTraceId trace;
        try
        {
            // Tests in other classes may fit at the same time: this fit's spans are the ones in this trace.
            using var root = TrainerTelemetry.Source.StartActivity("test")!;
            trace = root.TraceId;
            learner.FitOneCycle(epochs: 3, maxLr: 1e-3);
        }
        finally
        {
            TrainerTelemetry.StepSampleEvery = TrainerTelemetry.DefaultStepSampleEvery;
        }
        meters.RecordObservableInstruments();

        var mine = measurements.Where(m => Equals(m.Tags.GetValueOrDefault(TrainerTelemetry.Tags.RunId), "telemetry-test")).ToList();
        int Count(string name) => mine.Count(m => m.Name == name);
        foreach (var name in (string[])["trainer.train.loss", "trainer.learning_rate", "trainer.momentum", "trainer.throughput",
                     "trainer.step.duration", "trainer.data.wait.duration", "trainer.steps", "trainer.images"])
            Assert.True(Count(name) == 12, $"{name}: {Count(name)} measurements, expected one per step (12)");
        Assert.Equal(3, Count("trainer.validation.accuracy"));
        Assert.Equal(3, Count("trainer.validation.loss"));
        Assert.Equal([1.0, 2.0, 3.0], mine.Where(m => m.Name == "trainer.epoch").Select(m => m.Value));
        Assert.Equal(12 * 8, mine.Where(m => m.Name == "trainer.images").Sum(m => m.Value));
        Assert.All(mine, m => Assert.Equal(0, m.Tags[TrainerTelemetry.Tags.Rank]));
        Assert.Contains(measurements, m => m.Name == "trainer.process.memory.usage" && m.Value > 0);

        var stopped = spans.Where(a => a.TraceId == trace && a.OperationName != "test").ToList();
        var epochs = stopped.Where(a => a.OperationName == TrainerTelemetry.Spans.Epoch).ToList();
        Assert.Equal(3, epochs.Count);
        var steps = stopped.Where(a => a.OperationName == TrainerTelemetry.Spans.Step).ToList();
        Assert.Equal([0, 5, 10], steps.Select(s => (int)s.GetTagItem(TrainerTelemetry.Tags.Step)!));
        foreach (var step in steps)
        {
            Assert.Contains(epochs, e => e.SpanId == step.ParentSpanId);
            var phases = stopped.Where(a => a.ParentSpanId == step.SpanId).Select(a => a.OperationName).ToList();
            Assert.Equal([TrainerTelemetry.Spans.DataWait, TrainerTelemetry.Spans.ForwardBackward, TrainerTelemetry.Spans.OptimizerStep], phases);
        }
        var validations = stopped.Where(a => a.OperationName == TrainerTelemetry.Spans.Validation).ToList();
        Assert.Equal(3, validations.Count);
        Assert.All(validations, v => Assert.Contains(epochs, e => e.SpanId == v.ParentSpanId));
        // Unsampled steps make no spans at all: 3 step spans with 3 children each.
        Assert.Equal(3 * 4, stopped.Count(a => a.OperationName.StartsWith(TrainerTelemetry.Spans.Step, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_all_reduce_metrics_count_through_the_fault_injecting_wrapper()
    {
        var measurements = new ConcurrentQueue<(string Name, double Value)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == TrainerTelemetry.Meter && instrument.Name.StartsWith("trainer.allreduce.", StringComparison.Ordinal))
                listener.EnableMeasurementEvents(instrument);
        };
        void Mine(string name, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Equals(Tags(tags).GetValueOrDefault(TrainerTelemetry.Tags.RunId), "telemetry-faults")) measurements.Enqueue((name, value));
        }
        meters.SetMeasurementEventCallback<double>((i, v, tags, _) => Mine(i.Name, v, tags));
        meters.SetMeasurementEventCallback<long>((i, v, tags, _) => Mine(i.Name, v, tags));
        meters.Start();

        using var ranks = await Distributed.Ranks.CreateAsync(1);
        using var learner = TinyLearner.Create(trainImages: 16, validImages: 8, batchSize: 8);
        var ddp = new Trainer.Distributed.DistributedDataParallel(ranks[0], learner.Model);
        learner.Parallel = new Trainer.Faults.FaultInjectingParallel(ddp, () => learner.Step); // as TrainCommand does under TRAINER_FAULT
        learner.Callbacks.Add(new TelemetryCallback(learner, "telemetry-faults", NullLogger.Instance));
        learner.FitOneCycle(epochs: 1, maxLr: 1e-3);

        Assert.Equal([ddp.GradientBytes, ddp.GradientBytes], measurements.Where(m => m.Name == "trainer.allreduce.size").Select(m => (long)m.Value));
        Assert.Equal(ddp.AllReduceTime.TotalSeconds, measurements.Where(m => m.Name == "trainer.allreduce.duration").Sum(m => m.Value), 6);
        Assert.True(ddp.AllReduceTime > TimeSpan.Zero);
    }

    private static Dictionary<string, object?> Tags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var result = new Dictionary<string, object?>();
        foreach (var tag in tags) result[tag.Key] = tag.Value;
        return result;
    }
}

/// <summary>Tests that listen to the process-wide Trainer source and meter run one at a time.</summary>
[CollectionDefinition(nameof(TelemetryCollection), DisableParallelization = true)]
public sealed class TelemetryCollection;
