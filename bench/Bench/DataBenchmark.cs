using System.CommandLine;
using System.Diagnostics;
using TorchSharp;
using Trainer.Data;
using Trainer.Training;
using DataLoader = Trainer.Data.DataLoader;

namespace Bench;

/// <summary>
/// `Bench data`: images per second out of the training pipeline (DataLoader with fastai's rand_pad + flip_lr +
/// normalize), each batch copied into the model's input tensors as the Learner does (BatchTensors). bench/run pins it
/// to one core.
/// </summary>
internal static class DataBenchmark
{
    private static readonly Option<int> BatchSize = new("--batch") { Description = "Batch size.", DefaultValueFactory = _ => 128 };
    private static readonly Option<int> Batches = new("--batches") { Description = "Timed batches.", DefaultValueFactory = _ => 100 };
    private static readonly Option<int> Warmup = new("--warmup") { Description = "Untimed batches first.", DefaultValueFactory = _ => 10 };
    private static readonly Option<int> Images = new("--images") { Description = "Synthetic images in the dataset.", DefaultValueFactory = _ => 10_000 };

    public static Command Create()
    {
        var command = new Command("data", "Data-pipeline throughput with augmentation.");
        foreach (var option in new Option[] { BatchSize, Batches, Warmup, Images })
            command.Options.Add(option);
        command.SetAction(parse =>
        {
            var (batch, batches, warmup, images) = (parse.GetValue(BatchSize), parse.GetValue(Batches), parse.GetValue(Warmup), parse.GetValue(Images));
            if (batch < 1 || batches < 1 || warmup < 0 || images < batch)
            {
                Console.Error.WriteLine($"error: need --batch >= 1, --batches >= 1, --warmup >= 0 and --images >= --batch (got {batch}, {batches}, {warmup}, {images}).");
                return 2;
            }
            torch.set_num_threads(1);
            var dataset = SyntheticDataset.Create(images, seed: 0, "benchmark");
            var loader = new DataLoader(dataset, new RandomSampler(dataset.Count), batch, Augmentation.Train(), dropLast: true);
            using var tensors = new BatchTensors();
            var seen = 0;
            var clock = new Stopwatch();
            for (var epoch = 0; seen < warmup + batches; epoch++)
            {
                loader.Sampler.SetEpoch(epoch);
                foreach (var next in loader.GetBatches(epoch))
                {
                    if (seen == warmup) clock.Start();
                    using (next)
                        tensors.Load(next);
                    if (++seen == warmup + batches) break;
                }
            }
            Json.WriteLine(new { mode = "data", batch, batches, images_per_second = (double)batch * batches / clock.Elapsed.TotalSeconds, cores = Environment.ProcessorCount });
            return 0;
        });
        return command;
    }
}
