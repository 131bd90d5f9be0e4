using Microsoft.Extensions.Configuration;

namespace AppHost.Tests;

/// <summary>The launcher's MaxRestarts: passed to every trainer as --max-restarts; a bad value stops the launch with the fix.</summary>
public class TrainerLaunchTests
{
    private static TrainerLaunch Launch(params (string Key, string Value)[] values) =>
        TrainerLaunch.FromConfiguration(
            new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build(),
            repositoryRoot: "/repo");

    [Fact]
    public void Trainers_restart_the_group_three_times_by_default_and_MaxRestarts_changes_it()
    {
        Assert.Equal(["--max-restarts", "3"], After(Launch().TrainerArgs, "--max-restarts"));
        Assert.Equal(["--max-restarts", "0"], After(Launch(("MaxRestarts", "0")).TrainerArgs, "--max-restarts"));
        Assert.Equal(["--max-restarts", "7"], After(Launch(("MaxRestarts", "7")).TrainerArgs, "--max-restarts"));
        Assert.DoesNotContain("--max-restarts", Launch(("Command", "check")).TrainerArgs);
    }

    [Fact]
    public void A_max_restarts_in_TrainerArgs_is_not_given_twice()
    {
        var args = Launch(("TrainerArgs", "--max-restarts 1 --epochs 2")).TrainerArgs;

        Assert.Single(args, a => a == "--max-restarts");
        Assert.Equal(["--max-restarts", "1"], After(args, "--max-restarts"));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1001")]
    [InlineData("three")]
    public void A_bad_MaxRestarts_is_refused_naming_it_and_the_range(string value)
    {
        var error = Assert.Throws<ArgumentException>(() => Launch(("MaxRestarts", value)));

        Assert.Equal($"MaxRestarts must be a whole number from 0 to 1000, not '{value}'. Example: --MaxRestarts 2", error.Message);
    }

    private static string[] After(IReadOnlyList<string> args, string option) =>
        [.. args.Skip(args.ToList().IndexOf(option)).Take(2)];
}
