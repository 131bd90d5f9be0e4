using Trainer.Runtime;
using System.Net;
using System.Net.Sockets;
using Trainer.Commands;
using Trainer.Data;
using Trainer.Tests.Data;

namespace Trainer.Tests.Faults;

/// <summary>
/// Every configuration value and environment variable, negative, zero, huge or of the wrong type; missing,
/// unreadable or malformed data; a taken master port: each gets one clear line naming the value and the fix,
/// and exit code 2. docs/reliability.md lists them.
/// </summary>
[Collection("Faults")]
public sealed class BadInputTests
{
    [Theory]
    [InlineData("--preset", "fast", "--preset fast: unknown; use one of seed, quick.")]
    [InlineData("--epochs", "-1", "--epochs -1: must be 1 or more.")]
    [InlineData("--epochs", "0", "--epochs 0: must be 1 or more.")]
    [InlineData("--lr", "0", "--lr 0: must be a positive number")]
    [InlineData("--lr", "-0.003", "--lr -0.003: must be a positive number")]
    [InlineData("--lr", "NaN", "--lr NaN: must be a positive number")]
    [InlineData("--lr", "Infinity", "--lr Infinity: must be a positive number")]
    [InlineData("--wd", "-0.1", "--wd -0.1: must be 0 or more")]
    [InlineData("--bs", "0", "--bs 0: must be 1 or more")]
    [InlineData("--bs", "-8", "--bs -8: must be 1 or more")]
    [InlineData("--div-factor", "0", "--div-factor 0: must be a positive number")]
    [InlineData("--pct-start", "-0.1", "--pct-start -0.1: must be between 0 and 1")]
    [InlineData("--pct-start", "1.5", "--pct-start 1.5: must be between 0 and 1")]
    [InlineData("--dataset", "imagenet", "--dataset imagenet: unknown; use one of auto, cifar10, folder, synthetic.")]
    [InlineData("--data", "/no/such/folder", "--data /no/such/folder: no such folder", "cifar10")]
    [InlineData("--data-url", "ftp://example.org/cifar", "--data-url ftp://example.org/cifar: must be an http(s) URL")]
    [InlineData("--data-url", "not a url", "--data-url not a url: must be an http(s) URL")]
    [InlineData("--width", "0", "--width 0: must be from 1 to 64")]
    [InlineData("--width", "100000", "--width 100000: must be from 1 to 64")]
    [InlineData("--limit-train", "0", "--limit-train 0: must be 1 or more")]
    [InlineData("--limit-train", "8", "--limit-train 8 is smaller than --bs 16")]
    [InlineData("--limit-valid", "-1", "--limit-valid -1: must be 1 or more")]
    [InlineData("--output", " ", "--output: give a folder")]
    [InlineData("--threads", "0", "--threads 0: must be from 1 to 1024")]
    [InlineData("--threads", "100000", "--threads 100000: must be from 1 to 1024")]
    [InlineData("--log-every", "0", "--log-every 0: must be 1 or more.")]
    [InlineData("--max-restarts", "-1", "--max-restarts -1: must be from 0 (fail at once) to 1000")]
    [InlineData("--max-restarts", "100000", "--max-restarts 100000: must be from 0 (fail at once) to 1000")]
    [InlineData("--hang-timeout", "-1", "--hang-timeout -1: must be a number of seconds from 0 (off) to 86400")]
    [InlineData("--hang-timeout", "NaN", "--hang-timeout NaN: must be a number of seconds from 0 (off) to 86400")]
    [InlineData("--checkpoint-every", "-5", "--checkpoint-every -5: must be 0 (at epoch ends only) or a number of optimizer steps")]
    public void A_bad_option_value_is_refused_with_one_line_naming_the_option_and_the_fix(string option, string value, string message, string dataset = "synthetic")
    {
        var (_, errors) = InProcessTrain.Bind(InProcessTrain.Tiny("out", "--dataset", dataset, option, value));

        Assert.StartsWith(message, errors[0]);
        Assert.All(errors, error => Assert.DoesNotContain('\n', error));
    }

    [Theory]
    [InlineData("--epochs", "ten")]
    [InlineData("--lr", "fast")]
    [InlineData("--bs", "2.5")]
    [InlineData("--seed", "abc")]
    [InlineData("--width", "99999999999")]
    [InlineData("--resume", "maybe")]
    [InlineData("--max-restarts", "three")]
    [InlineData("--checkpoint-every", "1e3")]
    [InlineData("--hang-timeout", "soon")]
    public void A_value_of_the_wrong_type_is_a_parse_error_naming_it(string option, string value)
    {
        var parse = TrainCommand.Create().Parse([option, value]);

        var error = Assert.Single(parse.Errors);
        Assert.Contains(value, error.Message);
    }

    [Fact]
    public async Task The_trainer_process_exits_with_code_2_and_one_line_for_a_bad_value_and_for_a_wrong_type()
    {
        using var output = new TempDirectory();
        using var negative = TrainerProcess.Start(["train", .. InProcessTrain.Tiny(output.Path, "--epochs", "-3")]);
        using var wrongType = TrainerProcess.Start(["train", .. InProcessTrain.Tiny(output.Path, "--epochs", "three")]);

        var (bad, parse) = (await negative.WaitAsync(RankLossTests.Patience), await wrongType.WaitAsync(RankLossTests.Patience));

        Assert.True(bad.ExitCode == ExitCodes.BadConfiguration, bad.ToString());
        Assert.Equal("error: --epochs -3: must be 1 or more.", bad.StandardError.Trim());
        Assert.True(parse.ExitCode == ExitCodes.BadConfiguration, parse.ToString());
        Assert.Contains("three", parse.StandardError);
        Assert.Contains("Run 'Trainer train --help' for the options.", parse.StandardError);
    }

    [Theory]
    [InlineData("RANK", "-1", "RANK=-1 is negative")]
    [InlineData("RANK", "zero", "RANK='zero' is not a whole number")]
    [InlineData("RANK", "5", "RANK=5 is out of range for WORLD_SIZE=1")]
    [InlineData("RANK", "99999999999", "RANK=99999999999 is too large")]
    [InlineData("WORLD_SIZE", "0", "WORLD_SIZE=0 must be at least 1")]
    [InlineData("WORLD_SIZE", "-2", "WORLD_SIZE=-2 is negative")]
    [InlineData("WORLD_SIZE", "two", "WORLD_SIZE='two' is not a whole number")]
    [InlineData("LOCAL_RANK", "-1", "LOCAL_RANK=-1 is negative")]
    [InlineData("LOCAL_RANK", "3", "LOCAL_RANK=3 is out of range for LOCAL_WORLD_SIZE=1")]
    [InlineData("LOCAL_WORLD_SIZE", "0", "LOCAL_WORLD_SIZE=0 must be at least 1")]
    [InlineData("LOCAL_WORLD_SIZE", "4", "LOCAL_WORLD_SIZE=4 exceeds WORLD_SIZE=1")]
    [InlineData("GROUP_RANK", "x", "GROUP_RANK='x' is not a whole number")]
    [InlineData("MASTER_ADDR", "not a host!", "MASTER_ADDR='not a host!' is not a host name or IP address")]
    [InlineData("MASTER_PORT", "0", "MASTER_PORT=0 is out of range")]
    [InlineData("MASTER_PORT", "70000", "MASTER_PORT=70000 is out of range")]
    [InlineData("MASTER_PORT", "http", "MASTER_PORT='http' is not a whole number")]
    [InlineData("TORCHELASTIC_RESTART_COUNT", "-1", "TORCHELASTIC_RESTART_COUNT=-1 is negative")]
    [InlineData("TRAINER_RUN_SECRET", " ", "TRAINER_RUN_SECRET is set but empty")]
    [InlineData("TRAINER_THREADS", "0", "TRAINER_THREADS=0: must be a whole number from 1 to 1024")]
    [InlineData("TRAINER_THREADS", "many", "TRAINER_THREADS=many: must be a whole number from 1 to 1024")]
    [InlineData("TRAINER_THREADS", "5000", "TRAINER_THREADS=5000: must be a whole number from 1 to 1024")]
    [InlineData("TRAINER_JOIN_TIMEOUT", "0", "TRAINER_JOIN_TIMEOUT='0' is not a positive number of seconds")]
    [InlineData("TRAINER_JOIN_TIMEOUT", "soon", "TRAINER_JOIN_TIMEOUT='soon' is not a positive number of seconds")]
    [InlineData("TRAINER_JOIN_TIMEOUT", "1e12", "TRAINER_JOIN_TIMEOUT='1e12' is not a positive number of seconds")]
    [InlineData("TRAINER_BACKEND", "tpu", "TRAINER_BACKEND=tpu is not a backend; use auto, cpu or nccl.")]
    [InlineData("TRAINER_COLLECTIVE_TIMEOUT", "0", "TRAINER_COLLECTIVE_TIMEOUT=0 is not a number of seconds from 0 to 86400")]
    [InlineData("TRAINER_COLLECTIVE_TIMEOUT", "1e9", "TRAINER_COLLECTIVE_TIMEOUT=1e9 is not a number of seconds from 0 to 86400")]
    [InlineData("TRAINER_DATA_URL", "ftp://mirror/cifar", "TRAINER_DATA_URL=ftp://mirror/cifar: must be an http(s) URL")]
    [InlineData("TORCHELASTIC_USE_AGENT_STORE", "maybe", "TORCHELASTIC_USE_AGENT_STORE='maybe' is not True or False")]
    [InlineData("TRAINER_FAULT", "point=forward,rank=0,do=explode", "TRAINER_FAULT='point=forward,rank=0,do=explode': 'do=explode' is not one of")]
    [InlineData("TRAINER_FAULT", "point=forward,rank=0,do=sleep", "TRAINER_FAULT='point=forward,rank=0,do=sleep': do=sleep needs for=SECONDS")]
    [InlineData("TRAINER_FAULT", "point=nowhere,rank=0", "TRAINER_FAULT='point=nowhere,rank=0': 'point=nowhere' is not one of")]
    public async Task A_bad_environment_variable_stops_the_trainer_with_exit_code_2_and_one_line_naming_it(string variable, string value, string message)
    {
        using var output = new TempDirectory();
        var environment = new Dictionary<string, string?>
        {
            ["RANK"] = "0", ["WORLD_SIZE"] = "1", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{FreeTcpPort.Next()}", [variable] = value,
        };
        using var trainer = TrainerProcess.Start(["train", .. InProcessTrain.Tiny(output.Path)], environment);

        var result = await trainer.WaitAsync(RankLossTests.Patience);

        Assert.True(result.ExitCode == ExitCodes.BadConfiguration, result.ToString());
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(message, line);
        Assert.Empty(result.StandardOutput);
    }

    [Fact]
    public void Epochs_whose_steps_overflow_the_schedule_exit_2_before_training()
    {
        using var output = new TempDirectory();

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(output.Path, "--epochs", "2147483647"));

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        Assert.Contains("error: --epochs 2147483647 × 4 batches per epoch is more optimizer steps than the schedule counts", error);
    }

    [Fact]
    public void A_batch_larger_than_the_training_set_exits_2()
    {
        using var output = new TempDirectory();

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(output.Path, "--limit-train", "100000000", "--bs", "1000000"));

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        Assert.Contains("error: --bs 1000000 is larger than the 50000 training images", error);
    }

    [Fact]
    public void An_output_folder_that_cannot_be_made_exits_2()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.Combine("file"), "a file where the output folder should go");

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(dir.Combine("file", "run")));

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        Assert.Contains($"error: --output {dir.Combine("file", "run")}: cannot create the folder", error);
    }

    [Theory]
    [InlineData("missing", "no CIFAR-10 binary files there")]
    [InlineData("unreadable", "data_batch_2.bin")]
    [InlineData("truncated", "data_batch_4.bin: truncated or corrupt: 4609 bytes is not a whole number of 3073-byte records")]
    [InlineData("label out of range", "label 200 at byte offset 0 is outside 0..9")]
    public void Missing_unreadable_or_malformed_cifar10_files_exit_2_naming_the_file(string damage, string message)
    {
        using var dir = new TempDirectory();
        var data = dir.Combine("cifar");
        CifarFiles.WriteBatches(data, perBatch: 16, test: 20);
        switch (damage)
        {
            case "missing":
                File.Delete(Path.Combine(data, "data_batch_3.bin"));
                break;
            case "unreadable": // a folder where the file should be: no read permission stops root, this does
                File.Delete(Path.Combine(data, "data_batch_2.bin"));
                Directory.CreateDirectory(Path.Combine(data, "data_batch_2.bin"));
                break;
            case "truncated":
                var batch = Path.Combine(data, "data_batch_4.bin");
                File.WriteAllBytes(batch, File.ReadAllBytes(batch)[..(Cifar10Binary.RecordSize * 3 / 2)]);
                break;
            case "label out of range":
                var test = Path.Combine(data, Cifar10Binary.TestFile);
                var bytes = File.ReadAllBytes(test);
                bytes[0] = 200;
                File.WriteAllBytes(test, bytes);
                break;
        }

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(dir.Combine("run"), "--dataset", "cifar10", "--data", data));

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(message, line);
    }

    [Theory]
    [InlineData("wrong size", "image is 40x30; CIFAR images must be 32x32")]
    [InlineData("not an image", "not a readable image")]
    public void Images_of_the_wrong_shape_or_format_exit_2_naming_the_file(string damage, string message)
    {
        using var dir = new TempDirectory();
        var data = dir.Combine("images");
        foreach (var (split, label) in new[] { ("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "dog") })
            for (var i = 0; i < 20; i++)
                ImageFiles.WritePng(Path.Combine(data, split, label, $"{i}.png"), 32, 32, i);
        var bad = Path.Combine(data, "train", "dog", "bad.png");
        if (damage == "wrong size")
            ImageFiles.WritePng(bad, 40, 30, 1);
        else
            File.WriteAllText(bad, "not a png");

        var (exit, _, error) = InProcessTrain.Run(InProcessTrain.Tiny(dir.Combine("run"), "--dataset", "folder", "--data", data));

        Assert.Equal(ExitCodes.BadConfiguration, exit);
        Assert.Contains($"error: {bad}: {message}", error);
    }

    [Fact]
    public async Task A_master_port_already_in_use_exits_2_naming_the_port_and_how_to_find_its_owner()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;
        using var output = new TempDirectory();
        var environment = new Dictionary<string, string?>
        {
            ["RANK"] = "0", ["WORLD_SIZE"] = "2", ["MASTER_ADDR"] = "127.0.0.1", ["MASTER_PORT"] = $"{port}",
        };
        using var trainer = TrainerProcess.Start(["train", .. InProcessTrain.Tiny(output.Path)], environment);

        var result = await trainer.WaitAsync(RankLossTests.Patience);

        Assert.True(result.ExitCode == ExitCodes.BadConfiguration, result.ToString());
        Assert.Contains($"error: rank 0: MASTER_PORT={port}: cannot serve the store on 127.0.0.1:{port}: the port is already in use; pick a free MASTER_PORT", result.StandardError);
        Assert.Contains($"ss -ltnp 'sport = :{port}'", result.StandardError);
    }
}
