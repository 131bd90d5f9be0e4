using System.CommandLine;
using System.Diagnostics;
using TorchSharp;
using Microsoft.Extensions.Logging;
using Trainer.Data;
using Trainer.Distributed;
using Trainer.Elastic;
using Trainer.Faults;
using Trainer.Models;
using Trainer.Runtime;
using Trainer.Telemetry;
using Trainer.Training;
using Trainer.Watchdog;

namespace Trainer.Commands;

/// <summary>
/// `Trainer train`: the seed's script on one rank. A preset gives the defaults (seed: fastai's recipe;
/// quick: a small smoke run); any option given overrides it.
/// </summary>
internal static class TrainCommand
{

    private static readonly Option<string> Preset = new("--preset") { Description = "Recipe to start from: seed (fastai's: 10 epochs, lr 3e-3, wd 0.4, div 10, pct 0.5, bs 128, k=6, CIFAR-10) or quick (k=1, 1 epoch, 10k/2k images).", DefaultValueFactory = _ => Presets.Seed.Preset };
    private static readonly Option<int> Epochs = new("--epochs") { Description = "Epochs of the one-cycle schedule (fit_one_cycle's cyc_len)." };
    private static readonly Option<double> Lr = new("--lr") { Description = "Maximum learning rate (max_lr)." };
    private static readonly Option<double> Wd = new("--wd") { Description = "Decoupled weight decay (wd), applied to all parameters." };
    private static readonly Option<int> Bs = new("--bs") { Description = "Batch size per rank." };
    private static readonly Option<double> DivFactor = new("--div-factor") { Description = "The schedule starts at lr / div_factor." };
    private static readonly Option<double> PctStart = new("--pct-start") { Description = "Fraction of the steps spent warming up (pct_start)." };
    private static readonly Option<string> Dataset = new("--dataset") { Description = "cifar10 (binary batches), folder (fastai's train/ and test/ PNG folders) or synthetic." };
    private static readonly Option<string?> Data = new("--data") { Description = "Dataset folder. For cifar10 without it: the cache ($XDG_CACHE_HOME or ~/.cache/dotnet-ddp/cifar10), downloading when missing." };
    private static readonly Option<string?> DataUrl = new("--data-url") { Description = $"Where cifar-10-binary.tar.gz is downloaded from (a folder URL; env {Cifar10Download.BaseUrlVariable}; default {Cifar10Download.DefaultBaseUrl})." };
    private static readonly Option<int> Width = new("--width") { Description = "Width factor k of wrn_22 (fastai: 6)." };
    private static readonly Option<int> LimitTrain = new("--limit-train") { Description = "Use a random subset of N training images." };
    private static readonly Option<int> LimitValid = new("--limit-valid") { Description = "Use a random subset of N validation images." };
    private static readonly Option<int> Seed = new("--seed") { Description = "Seed for weights, shuffling and augmentation: a run is repeatable." };
    private static readonly Option<string> Output = new("--output") { Description = "Folder for checkpoint.ckpt and summary.json." };
    private static readonly Option<bool> Resume = new("--resume") { Description = "Continue from the checkpoint in --output if there is one (same recipe required)." };
    private static readonly Option<int> Threads = new("--threads") { Description = "Torch CPU threads (default: env TRAINER_THREADS, else OMP_NUM_THREADS, else the cores / LOCAL_WORLD_SIZE)." };
    private static readonly Option<int> LogEvery = new("--log-every") { Description = "Without a terminal, print a progress line every N batches." };
    private static readonly Option<string> Device = new("--device") { Description = "auto (cuda:LOCAL_RANK when CUDA is available, else cpu), cpu or cuda." };
    private static readonly Option<int> MaxRestarts = new("--max-restarts") { Description = $"Restart the whole group from the last checkpoint up to N times after a failure (torchrun's --max-restarts); 0 = the first failure ends the run (every rank stops within seconds). Default {TrainOptions.DefaultMaxRestarts}.", DefaultValueFactory = _ => TrainOptions.DefaultMaxRestarts };
    private static readonly Option<double> HangTimeout = new("--hang-timeout") { Description = $"Seconds without progress after which a rank's worker counts as hung: it is named, stopped and the group restarts from the last checkpoint (never during download, the first step, validation or checkpoints; never below 3 × the slowest step); 0 = off. Default {TrainOptions.DefaultHangTimeout}.", DefaultValueFactory = _ => TrainOptions.DefaultHangTimeout };
    private static readonly Option<int> CheckpointEvery = new("--checkpoint-every") { Description = "Also checkpoint every N optimizer steps within an epoch (a restart then repeats at most N steps); 0 = at epoch ends only." };

    internal const string WorkerName = "worker";

    /// <summary>
    /// `Trainer train`, the entry point: this rank's elastic agent, which runs the training in `Trainer worker`
    /// processes, stops every rank when one fails and restarts the group up to --max-restarts times (docs/reliability.md).
    /// </summary>
    public static Command Create() => WithOptions(new Command("train", "Train wrn_22 on CIFAR-10 with fastai's fit_one_cycle recipe (one rank, under its elastic agent)."),
        (options, cancellationToken) => ElasticAgent.RunAsync(
            new ElasticOptions { MaxRestarts = options.MaxRestarts, HangTimeout = TimeSpan.FromSeconds(options.HangTimeout), OutputFolder = options.Output },
            WorkerProcess.ThisCommandLineAs(WorkerName), cancellationToken));

    /// <summary>`Trainer worker`: the training of one rank, in this process; its agent starts it, or a user without one (a debugger).</summary>
    public static Command CreateWorker() => WithOptions(new Command(WorkerName, "The same training in this process, without an elastic agent (train starts one per restart round; run it by hand under a debugger)."),
        (options, cancellationToken) => RunAsync(options, Console.Out, cancellationToken));

    private static Command WithOptions(Command command, Func<TrainOptions, CancellationToken, Task<int>> run)
    {
        foreach (var option in new Option[] { Preset, Epochs, Lr, Wd, Bs, DivFactor, PctStart, Dataset, Data, DataUrl, Width, LimitTrain, LimitValid, Seed, Output, Resume, Threads, LogEvery, MaxRestarts, CheckpointEvery, HangTimeout, Device })
            command.Options.Add(option);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var (options, errors) = Bind(parseResult);
            if (options is null || errors.Count > 0)
            {
                foreach (var error in errors) Console.Error.WriteLine($"error: {error}");
                return ExitCodes.BadConfiguration;
            }
            return await run(options, cancellationToken);
        });
        return command;
    }

    /// <summary>The preset, then the options given; with the errors of the result.</summary>
    internal static (TrainOptions? Options, IReadOnlyList<string> Errors) Bind(ParseResult parse)
    {
        var presetName = parse.GetValue(Preset)!;
        if (!Presets.All.TryGetValue(presetName, out var preset))
            return (null, [$"--preset {presetName}: unknown; use one of {string.Join(", ", Presets.All.Keys)}."]);
        if (Environment.GetEnvironmentVariable(Cifar10Download.BaseUrlVariable) is { Length: > 0 } dataUrl
            && !(Uri.TryCreate(dataUrl, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps)))
            return (null, [$"{Cifar10Download.BaseUrlVariable}={dataUrl}: must be an http(s) URL of the folder that holds cifar-10-binary.tar.gz; fix or unset it."]);
        var options = preset with
        {
            Epochs = Given(parse, Epochs, preset.Epochs),
            Lr = Given(parse, Lr, preset.Lr),
            Wd = Given(parse, Wd, preset.Wd),
            Bs = Given(parse, Bs, preset.Bs),
            DivFactor = Given(parse, DivFactor, preset.DivFactor),
            PctStart = Given(parse, PctStart, preset.PctStart),
            Dataset = Given(parse, Dataset, preset.Dataset),
            Data = Given(parse, Data, preset.Data),
            DataUrl = Given(parse, DataUrl, preset.DataUrl),
            Width = Given(parse, Width, preset.Width),
            LimitTrain = GivenOrNull(parse, LimitTrain, preset.LimitTrain),
            LimitValid = GivenOrNull(parse, LimitValid, preset.LimitValid),
            Seed = Given(parse, Seed, preset.Seed),
            Output = Given(parse, Output, preset.Output),
            Resume = parse.GetValue(Resume),
            Threads = GivenOrNull(parse, Threads, preset.Threads),
            LogEvery = Given(parse, LogEvery, preset.LogEvery),
            Device = Given(parse, Device, preset.Device),
            MaxRestarts = parse.GetValue(MaxRestarts),
            CheckpointEvery = parse.GetValue(CheckpointEvery),
            HangTimeout = parse.GetValue(HangTimeout),
        };
        return (options, options.Validate());
    }

    private static T Given<T>(ParseResult parse, Option<T> option, T fallback) =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : fallback;

    private static T? GivenOrNull<T>(ParseResult parse, Option<T> option, T? fallback) where T : struct =>
        parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option) : fallback;

    internal static Task<int> RunAsync(TrainOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        torch.Device device = torch.CPU;
        DistributedSettings Configure(DistributedSettings settings)
        {
            var (contract, _, group) = settings;
            device = TrainingDevice.Resolve(options.Device, contract.LocalRank);
            if (contract.WorldSize > 1)
                group = group with { Backend = TrainingDevice.BackendFor(device, group.Backend) };
            FaultInjection.ConfigureFromEnvironment(contract);
            AgentWatch.Start();
            WorkerProgress.StartFromEnvironment();
            return settings with { Group = group with { Observer = FaultInjection.Any ? new FaultInjectingObserver(WorkerProgress.Observer) : WorkerProgress.Observer } };
        }

        return WorkerHost.RunAsync("train", async (rank, stopping) =>
        {
            var (threads, threadsReason) = options.Threads is { } given ? (given, $"--threads {given}") : rank.Contract.ThreadsPerRank(Environment.ProcessorCount);
            output.WriteLine($"threads: {threads} torch threads ({threadsReason})");
            var run = options with { Threads = threads };
            try
            {
                return await TrainAsync(run, device, rank.World, rank.Contract, rank.Services, output, rank.Logger, stopping);
            }
            catch (TrainingDivergedException e)
            {
                rank.Logger.LogError("rank {Rank}: {Message}", rank.Contract.Rank, e.Message);
                Console.Error.WriteLine($"error: rank {rank.Contract.Rank}: {e.Message}. The last checkpoint in {run.Output} is kept; lower --lr (now {run.Lr:G4}) or raise --div-factor.");
                return ExitCodes.Diverged;
            }
            catch (CheckpointWriteException e)
            {
                rank.Logger.LogError("rank {Rank}: {Message}", rank.Contract.Rank, e.Message);
                Console.Error.WriteLine($"error: rank {rank.Contract.Rank}: {e.Message}");
                return ExitCodes.OutputFailed;
            }
        }, Console.Error, cancellationToken, Configure, errorPrefix: "error");
    }

    private static async Task<int> TrainAsync(TrainOptions options, torch.Device device, DistributedWorld? world, DistributedContract contract, IServiceProvider services,
        TextWriter output, ILogger logger, CancellationToken cancellationToken)
    {
        var interactive = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var watch = Stopwatch.StartNew();
        NativeAllocator.Tune();
        torch.set_num_threads(options.Threads!.Value);

        DataBunch data;
        try
        {
            data = await SharedData.LoadAsync(options, world, new DownloadReporter(Console.Error), cancellationToken);
        }
        catch (Exception e) when (SharedData.IsDataError(e))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadConfiguration;
        }
        if (data.Fallback is { } reason)
        {
            logger.LogWarning("CIFAR-10 is not available ({Reason}); training on the SYNTHETIC dataset instead. Set --dataset cifar10 to make this an error.", reason);
            output.WriteLine("!!! WARNING: CIFAR-10 could not be had, so this run trains on the SYNTHETIC dataset. Its accuracy says nothing about CIFAR-10.");
            output.WriteLine($"!!! reason: {reason}");
        }
        if (data.Train.Count < options.Bs)
        {
            Console.Error.WriteLine($"error: --bs {options.Bs} is larger than the {data.Train.Count} training images: no full batch; lower --bs or use more data.");
            return ExitCodes.BadConfiguration;
        }
        output.WriteLine($"data: {data.Train.Count} training images from {data.Train.Source}; {data.Valid.Count} validation images from {data.Valid.Source}; {data.Train.Classes.Count} classes");

        torch.manual_seed(options.Seed);
        using var model = WideResNet.Wrn22(options.Width, data.Train.Classes.Count);
        if (device.type != DeviceType.CPU)
            model.to(device); // initialised on the CPU first, so a seed gives the same weights on every device
        var parameters = model.parameters().Sum(p => p.numel());
        output.WriteLine($"model: wrn_22 k={options.Width}, {parameters:N0} parameters on {device}; {options.Threads} torch threads");

        var train = new DataLoader(data.Train, new RandomSampler(data.Train.Count, options.Seed), options.Bs, Augmentation.Train(), dropLast: true, seed: options.Seed);
        var valid = new DataLoader(data.Valid, new SequentialSampler(data.Valid.Count), options.Bs, Augmentation.Valid(), dropLast: false, seed: options.Seed);
        if ((long)options.Epochs * train.BatchCount > int.MaxValue)
        {
            Console.Error.WriteLine($"error: --epochs {options.Epochs} × {train.BatchCount} batches per epoch is more optimizer steps than the schedule counts ({int.MaxValue}); lower --epochs.");
            return ExitCodes.BadConfiguration;
        }
        using var learner = new Learner(model, train, valid);
        if (world is not null)
        {
            learner.ToDistributed(world.Group, options.Seed);
            output.WriteLine($"distributed: rank {world.Group.Rank} of {world.Group.WorldSize} ({world.Group.Backend.ToString().ToLowerInvariant()}), " +
                             $"{learner.Train.Sampler.Count} training and {learner.Valid.Sampler.Count} validation samples per rank");
        }

        if (FaultInjection.Any)
            learner.Parallel = new FaultInjectingParallel(learner.Parallel, () => learner.Step);

        try
        {
            Directory.CreateDirectory(options.Output);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: --output {options.Output}: cannot create the folder ({e.Message}); choose a writable folder.");
            return ExitCodes.BadConfiguration;
        }
        var checkpoints = new CheckpointFiles(options.Output);
        if (ResumeFromCheckpoint.Apply(options, checkpoints, learner, world?.Group, output, logger) is { } stop)
            return stop;
        learner.Callbacks.Add(new SaveCheckpointCallback(learner, checkpoints, options.Recipe(), options.CheckpointEvery));
        learner.Callbacks.Add(new RunControlCallback(learner, options.Output, options.Recipe(), logger));
        await using var observability = RunObservability.Attach(learner, options, data, contract,
            world is null ? "single process" : world.Group.Backend.ToString().ToLowerInvariant(), services, logger);

        FitResult Fit() => learner.FitOneCycle(options.Epochs, options.Lr, options.Wd, options.DivFactor, options.PctStart, cancellationToken: cancellationToken);
        FitResult fit;
        if (!learner.IsMain)
            fit = Fit();
        else if (interactive)
            fit = ProgressBarCallback.Run(learner, Fit);
        else
        {
            learner.Callbacks.Add(new LogLinesCallback(output, options.LogEvery));
            fit = Fit();
        }

        var last = fit.Epochs.Count > 0
            ? fit.Epochs[^1]
            : Final(learner, options);
        if (learner.IsMain)
        {
            var worldSize = learner.Parallel.WorldSize;
            var summary = new TrainingSummary(last.Accuracy, last.ValidLoss, last.TrainLoss, learner.Epoch, fit.ImagesPerSecond * worldSize, fit.ImagesPerSecond,
                watch.Elapsed.TotalSeconds, fit.DataWait.TotalSeconds, worldSize, data.Name, options.Preset, options.Width, options.Bs,
                options.Lr, options.Wd, options.DivFactor, options.PctStart, options.Seed, options.Threads!.Value, data.Train.Count, data.Valid.Count, fit.Stopped,
                [.. learner.History]);
            var summaryPath = Path.Combine(options.Output, TrainingSummary.FileName);
            try
            {
                summary.Write(summaryPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: could not write {summaryPath}: {e.Message}; the checkpoint of the finished run is kept.");
                return ExitCodes.OutputFailed;
            }
            output.WriteLine($"{(fit.Stopped ? "stopped" : "done")}: accuracy {last.Accuracy:F4}, valid_loss {last.ValidLoss:F4}, train_loss {last.TrainLoss:F4}, {fit.ImagesPerSecond:F0} images/s, {watch.Elapsed.TotalSeconds:F0} s; wrote {summaryPath}");
        }
        else
        {
            output.WriteLine($"rank {learner.Parallel.Rank} {(fit.Stopped ? "stopped" : "done")}: accuracy {last.Accuracy:F4}, valid_loss {last.ValidLoss:F4}, {fit.ImagesPerSecond:F0} images/s on this rank");
        }
        return fit.Stopped ? ExitCodes.Interrupted : ExitCodes.Success;
    }

    /// <summary>Nothing left to train (resumed a finished run): report the model as it stands.</summary>
    private static EpochResult Final(Learner learner, TrainOptions options)
    {
        var validation = learner.Validate(Math.Max(0, learner.Epoch - 1));
        return new EpochResult(learner.Epoch - 1, options.Epochs, learner.TrainLoss.Smooth, validation.Loss, validation.Accuracy, 0, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
    }

    /// <summary>Download progress on stderr: a line every 10%.</summary>
    private sealed class DownloadReporter(TextWriter error) : IProgress<DownloadProgress>
    {
        private int _lastDecile = -1;

        public void Report(DownloadProgress value)
        {
            if (value.Total is not { } total || total == 0)
            {
                if (value.Received == 0) error.WriteLine("downloading CIFAR-10 ...");
                return;
            }
            var decile = (int)(value.Received * 10 / total);
            if (decile == _lastDecile) return;
            _lastDecile = decile;
            error.WriteLine($"downloading CIFAR-10: {decile * 10}% ({value.Received / 1e6:F0} of {total / 1e6:F0} MB)");
        }
    }
}
