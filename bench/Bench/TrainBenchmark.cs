using System.CommandLine;
using System.Diagnostics;
using TorchSharp;
using Trainer.Data;
using Trainer.Distributed;
using Trainer.Models;
using Trainer.Runtime;
using Trainer.Training;
using DataLoader = Trainer.Data.DataLoader;

namespace Bench;

/// <summary>
/// `Bench train` and `Bench ddp`: pytorch_peer.py's train and ddp modes on our stack. WRN-22 of width k, a fixed
/// random batch, AdamW with lr 3e-3, betas (0.9, 0.99), weight decay 0.4, through the Learner's own training step
/// (and, for ddp, learn.ToDistributed's DistributedDataParallel); warm-up steps, then timed steps on rank 0.
/// </summary>
internal static class TrainBenchmark
{
    public const double Lr = 3e-3;
    public const double Beta1 = 0.9;
    public const double WeightDecay = 0.4;

    private static readonly Option<int> Width = new("--width") { Description = "Width factor k of wrn_22.", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> BatchSize = new("--batch") { Description = "Batch size per rank.", DefaultValueFactory = _ => 128 };
    private static readonly Option<int> Steps = new("--steps") { Description = "Timed steps.", DefaultValueFactory = _ => 8 };
    private static readonly Option<int> Warmup = new("--warmup") { Description = "Untimed steps first.", DefaultValueFactory = _ => 2 };
    private static readonly Option<int> Threads = new("--threads") { Description = "Torch threads per rank.", DefaultValueFactory = _ => 1 };

    public static Command Create(bool distributed)
    {
        var command = distributed
            ? new Command("ddp", "Data-parallel training steps, one process per rank (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).")
            : new Command("train", "Training steps in one process.");
        foreach (var option in new Option[] { Width, BatchSize, Steps, Warmup, Threads })
            command.Options.Add(option);
        command.SetAction(async (parse, _) =>
        {
            var settings = new Settings(parse.GetValue(Width), parse.GetValue(BatchSize), parse.GetValue(Steps), parse.GetValue(Warmup), parse.GetValue(Threads));
            if (settings.Error() is { } error)
            {
                Console.Error.WriteLine($"error: {error}");
                return 2;
            }
            NativeAllocator.Tune();
            torch.set_num_threads(settings.Threads);
            if (!distributed)
                return Run(settings, group: null);
            return await BenchWorld.RunAsync("ddp", world => Run(settings, world.Group));
        });
        return command;
    }

    private static int Run(Settings settings, ProcessGroup? group)
    {
        torch.manual_seed(0);
        using var model = WideResNet.Wrn22(settings.Width);
        // The loaders are never iterated: the benchmark feeds one fixed batch, as pytorch_peer.py does.
        var dataset = new ImageDataset(new byte[settings.Batch * ImageDataset.ImageSize], new int[settings.Batch], SyntheticDataset.Classes, "benchmark");
        var loader = new DataLoader(dataset, new SequentialSampler(dataset.Count), settings.Batch, Augmentation.Valid(), dropLast: true);
        using var learner = new Learner(model, loader, loader);
        if (group is not null)
            learner.ToDistributed(group, seed: 0);

        float[] images;
        long[] labels;
        using (var x = torch.randn(settings.Batch, ImageDataset.Channels, ImageDataset.Height, ImageDataset.Width))
        using (var y = torch.randint(0, SyntheticDataset.Classes.Count, [settings.Batch]))
        {
            images = x.data<float>().ToArray();
            labels = y.data<long>().ToArray();
        }
        using var batch = new Batch(0, images, labels, settings.Batch, settings.Batch, release: null);

        model.train();
        learner.Parallel.OnFitStart(model);
        var times = new double[settings.Steps];
        var ddp = learner.Parallel as DistributedDataParallel;
        long faults = 0, managedBytes = 0, collections = 0;
        TimeSpan allReduce = TimeSpan.Zero, kernel = TimeSpan.Zero, cpu = TimeSpan.Zero;
        for (var i = 0; i < settings.Warmup + settings.Steps; i++)
        {
            if (i == settings.Warmup)
            {
                faults = ProcessCounters.MinorFaults();
                kernel = ProcessCounters.KernelTime();
                cpu = ProcessCounters.CpuTime();
                managedBytes = GC.GetTotalAllocatedBytes();
                collections = GC.CollectionCount(0);
                allReduce = ddp?.AllReduceTime ?? TimeSpan.Zero;
            }
            var started = Stopwatch.GetTimestamp();
            learner.TrainBatch(batch, Lr, Beta1, WeightDecay);
            if (i >= settings.Warmup)
                times[i - settings.Warmup] = Stopwatch.GetElapsedTime(started).TotalSeconds;
        }
        faults = ProcessCounters.MinorFaults() - faults;
        kernel = ProcessCounters.KernelTime() - kernel;
        cpu = ProcessCounters.CpuTime() - cpu;
        managedBytes = GC.GetTotalAllocatedBytes() - managedBytes;
        collections = GC.CollectionCount(0) - collections;
        allReduce = (ddp?.AllReduceTime ?? TimeSpan.Zero) - allReduce;

        var peaks = new[] { ProcessCounters.PeakResidentBytes() };
        if (group is not null)
        {
            using var mine = torch.tensor(peaks);
            using var all = group.AllGather(mine);
            peaks = all.data<long>().ToArray();
        }
        if (group is null || group.Rank == 0)
        {
            var world = group?.WorldSize ?? 1;
            Json.WriteLine(new
            {
                mode = group is null ? "train" : "ddp",
                world,
                width = settings.Width,
                batch = settings.Batch,
                threads = settings.Threads,
                steps = settings.Steps,
                images_per_second = world * settings.Batch * settings.Steps / times.Sum(),
                best_images_per_second = world * settings.Batch / times.Min(),
                peak_resident_bytes = peaks,
                minor_faults_per_step = (double)faults / settings.Steps,
                kernel_seconds_per_step = kernel.TotalSeconds / settings.Steps,
                cpu_seconds_per_step = cpu.TotalSeconds / settings.Steps,
                malloc = ProcessCounters.Malloc(),
                managed_bytes_per_step = (double)managedBytes / settings.Steps,
                gen0_collections = collections,
                step_seconds = times.Sum() / settings.Steps,
                all_reduce_seconds_per_step = ddp is null ? (double?)null : allReduce.TotalSeconds / settings.Steps,
            });
        }
        return 0;
    }

    private sealed record Settings(int Width, int Batch, int Steps, int Warmup, int Threads)
    {
        public string? Error() =>
            Width < 1 ? $"--width {Width}: the width factor k must be 1 or more." :
            Batch < 1 ? $"--batch {Batch}: the batch size must be 1 or more." :
            Steps < 1 ? $"--steps {Steps}: time at least 1 step." :
            Warmup < 0 ? $"--warmup {Warmup}: must be 0 or more." :
            Threads < 1 ? $"--threads {Threads}: torch threads must be 1 or more." : null;
    }
}
