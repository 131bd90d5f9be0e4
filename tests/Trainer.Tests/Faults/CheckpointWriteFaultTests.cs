using Trainer.Runtime;
using System.Diagnostics;
using Trainer.Commands;
using Trainer.Training;

namespace Trainer.Tests.Faults;

/// <summary>A checkpoint write that dies halfway or meets a full disk never costs the checkpoint before it.</summary>
[Collection("Faults")]
public sealed class CheckpointWriteFaultTests
{
    [Fact]
    public async Task Rank_0_killed_halfway_through_a_checkpoint_write_restarts_from_the_previous_intact_checkpoint()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 128),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = "point=checkpoint,rank=0,at=2" });

        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.True(exitCodes.All(code => code == 0), run.ToString());
        Assert.Contains("fault injection (TRAINER_FAULT): killing this rank", run[0].Output);
        Assert.Contains($"resumed from {Path.Combine(output.Path, Checkpoint.FileName)}: 1 of 2 epochs done (step 4)", run[0].Output);
        var final = Checkpoint.ReadInfo(Path.Combine(output.Path, Checkpoint.FileName));
        Assert.Equal((2, 8), (final.Epoch, final.Step));
        Assert.Empty(Directory.GetFiles(output.Path, "*.tmp"));
    }

    [Fact]
    public async Task A_full_disk_while_checkpointing_stops_every_rank_with_exit_code_4_and_keeps_the_last_checkpoint()
    {
        using var output = new TempDirectory();
        using var run = TrainerRanks.Start(2, TrainerRanks.TinyRun(output.Path, trainImages: 128),
            new Dictionary<string, string?> { ["TRAINER_FAULT"] = "point=diskfull,rank=0,at=2" });

        var exitCodes = await run.WaitAsync(RankLossTests.Patience);

        Assert.True(exitCodes.All(code => code == ExitCodes.OutputFailed), run.ToString());
        Assert.Contains($"could not write the checkpoint {Path.Combine(output.Path, Checkpoint.FileName)}: No space left on device", run[0].Output);
        Assert.Contains("the previous checkpoint is kept", run[0].Output);
        foreach (var rank in run.Ranks)
        {
            Assert.Contains("rank 0's worker exited with exit code 4 (could not write its output); not restarting", rank.Output);
            Assert.DoesNotContain("round 1:", rank.Output);
        }
        var kept = Checkpoint.ReadInfo(Path.Combine(output.Path, Checkpoint.FileName));
        Assert.Equal((1, 4), (kept.Epoch, kept.Step));
        Assert.Empty(Directory.GetFiles(output.Path, "*.tmp"));
    }

    [TmpfsFact]
    public async Task A_really_full_tmpfs_stops_the_run_with_exit_code_4_and_keeps_the_last_checkpoint()
    {
        using var mountPoint = new TempDirectory();
        using var kept = new TempDirectory();
        // 5 MB holds one 3.3 MB checkpoint of wrn_22 k=1, not a second one beside it: the epoch-2 save meets ENOSPC.
        var script = $"mount -t tmpfs -o size=5m tmpfs '{mountPoint.Path}' || exit 99; " +
                     $"\"$0\" \"$@\"; code=$?; cp -a '{mountPoint.Path}/.' '{kept.Path}/'; exit $code";
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        foreach (var argument in (string[])["--user", "--map-root-user", "--mount", "sh", "-c", script,
                     Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", TrainerProcess.TrainerDll,
                     .. TrainerRanks.TinyRun(mountPoint.Path, trainImages: 64)])
            start.ArgumentList.Add(argument);
        TrainerRanks.SetUpEnvironment(start, new Dictionary<string, string?> { ["TRAINER_THREADS"] = "1" });

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(RankLossTests.Patience);
        var output = $"{await stdout}\n{await stderr}";

        Assert.True(process.ExitCode == ExitCodes.OutputFailed, output);
        Assert.Contains("No space left on device", output);
        Assert.Contains("the previous checkpoint is kept", output);
        var checkpoint = Checkpoint.ReadInfo(Path.Combine(kept.Path, Checkpoint.FileName));
        Assert.Equal((1, 4), (checkpoint.Epoch, checkpoint.Step));
        Assert.Empty(Directory.GetFiles(kept.Path, "*.tmp"));
    }
}

/// <summary>Runs only where a tmpfs can be mounted in a private mount namespace (unshare; root, or unprivileged user namespaces).</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(Probe);

    public TmpfsFactAttribute()
    {
        if (WhyNot.Value is { } reason)
            Skip = reason;
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "tmpfs needs Linux";
        try
        {
            var start = new ProcessStartInfo("unshare") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var argument in (string[])["--user", "--map-root-user", "--mount", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs \"$d\" && umount \"$d\" && rmdir \"$d\""])
                start.ArgumentList.Add(argument);
            using var probe = Process.Start(start)!;
            var error = probe.StandardError.ReadToEnd();
            return probe.WaitForExit(10_000) && probe.ExitCode == 0
                ? null
                : $"cannot mount a tmpfs in a private namespace here (unshare --user --mount: {error.Trim()}); the simulated full disk (TRAINER_FAULT=point=diskfull) still runs";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"unshare is not available ({e.Message}); the simulated full disk (TRAINER_FAULT=point=diskfull) still runs";
        }
    }
}
