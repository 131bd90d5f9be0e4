using Microsoft.Extensions.Configuration;

namespace AppHost.Tests;

/// <summary>The launcher's configuration and torchrun's rank arithmetic over several nodes, without starting anything.</summary>
public class TrainerLaunchTests
{
    private static TrainerLaunch Launch(bool publishing = false, params (string Key, string Value)[] values) =>
        TrainerLaunch.FromConfiguration(
            new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build(),
            repositoryRoot: "/repo", publishing);

    private static (string, string)[] Node(int nodes, int nodeRank, int trainers) =>
    [
        ("Nodes", $"{nodes}"), ("NodeRank", $"{nodeRank}"), ("Trainers", $"{trainers}"), ("MasterAddr", "10.0.0.4"),
        ("RunId", "multi"), (NodeLayout.RunSecretKey, "s3cret"),
    ];

    [Fact]
    public void One_node_is_the_default_and_its_ranks_are_its_local_ranks()
    {
        var layout = Launch(false, ("Trainers", "3")).Layout;

        Assert.Equal((1, 0, 3, "127.0.0.1", (int?)null), (layout.Nodes, layout.NodeRank, layout.WorldSize, layout.MasterAddr, layout.MasterPort));
        Assert.True(layout.HostsStore);
        Assert.Equal([0, 1, 2], Enumerable.Range(0, 3).Select(layout.GlobalRank));
        Assert.Equal(new Dictionary<string, string>
        {
            ["RANK"] = "2", ["LOCAL_RANK"] = "2", ["GROUP_RANK"] = "0", ["WORLD_SIZE"] = "3", ["LOCAL_WORLD_SIZE"] = "3",
        }, layout.RankVariables(2));
    }

    [Theory]
    [InlineData(2, 0, 2, new[] { 0, 1 })]
    [InlineData(2, 1, 2, new[] { 2, 3 })]
    [InlineData(3, 2, 4, new[] { 8, 9, 10, 11 })]
    public void Global_rank_is_node_rank_times_local_world_size_plus_local_rank(int nodes, int nodeRank, int trainers, int[] ranks)
    {
        var layout = Launch(false, Node(nodes, nodeRank, trainers)).Layout;

        Assert.Equal(ranks, Enumerable.Range(0, trainers).Select(layout.GlobalRank));
        Assert.Equal(nodes * trainers, layout.WorldSize);
        Assert.Equal(nodeRank == 0, layout.HostsStore);
        Assert.Equal(29500, layout.MasterPort);
        for (var localRank = 0; localRank < trainers; localRank++)
        {
            var variables = layout.RankVariables(localRank);
            Assert.Equal($"{ranks[localRank]}", variables["RANK"]);
            Assert.Equal($"{localRank}", variables["LOCAL_RANK"]);
            Assert.Equal($"{nodeRank}", variables["GROUP_RANK"]);
            Assert.Equal($"{nodes * trainers}", variables["WORLD_SIZE"]);
            Assert.Equal($"{trainers}", variables["LOCAL_WORLD_SIZE"]);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => layout.GlobalRank(trainers));
    }

    [Fact]
    public void A_given_master_port_is_kept()
    {
        Assert.Equal(31000, Launch(false, [.. Node(2, 1, 2), ("MasterPort", "31000")]).Layout.MasterPort);
        Assert.Equal(31000, Launch(false, ("MasterPort", "31000")).Layout.MasterPort);
    }

    [Theory]
    [InlineData("NodeRank=2", "NodeRank must be a whole number from 0 to 1, not '2'")]
    [InlineData("Nodes=0", "Nodes must be a whole number from 1 to 4096, not '0'")]
    [InlineData("MasterAddr=", "Nodes=2 needs MasterAddr")]
    [InlineData("MasterAddr=no such host!", "MasterAddr must be a host name or IP address, not 'no such host!'")]
    [InlineData("MasterPort=70000", "MasterPort must be a whole number from 1 to 65535, not '70000'")]
    [InlineData("RunId=", "Nodes=2 needs RunId")]
    [InlineData("Parameters:run-secret=", "Nodes=2 needs Parameters:run-secret")]
    public void A_bad_or_missing_multi_node_value_is_a_one_line_error_with_an_example(string change, string message)
    {
        var (key, value) = (change[..change.IndexOf('=')], change[(change.IndexOf('=') + 1)..]);
        var values = Node(2, 1, 2).Where(v => v.Item1 != key).Append((key, value)).ToArray();

        var error = Assert.Throws<ArgumentException>(() => Launch(false, values));

        Assert.StartsWith(message, error.Message);
        Assert.Contains("Example: --", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_node_rank_on_a_single_node_run_is_an_error()
    {
        Assert.StartsWith("NodeRank must be a whole number from 0 to 0, not '1'", Assert.Throws<ArgumentException>(() => Launch(false, ("NodeRank", "1"))).Message);
    }

    [Fact]
    public void Node_0_warns_when_master_addr_is_loopback_that_other_machines_cannot_reach()
    {
        var loopback = Launch(false, [.. Node(2, 0, 2).Where(v => v.Item1 != "MasterAddr"), ("MasterAddr", "127.0.0.1")]).Layout;
        Assert.Contains("loopback", loopback.LoopbackWarning());

        Assert.Null(Launch(false, Node(2, 0, 2)).Layout.LoopbackWarning());
        Assert.Null(Launch(false, Node(2, 1, 2)).Layout.LoopbackWarning());
        Assert.Null(Launch(false, ("Trainers", "2")).Layout.LoopbackWarning());
    }

    [Fact]
    public void Published_every_trainer_is_a_node_of_one_rank_and_the_manifest_holds_the_whole_run()
    {
        var layout = Launch(true, ("Trainers", "3")).Layout;

        Assert.Equal(new Dictionary<string, string>
        {
            ["RANK"] = "2", ["LOCAL_RANK"] = "0", ["GROUP_RANK"] = "2", ["WORLD_SIZE"] = "3", ["LOCAL_WORLD_SIZE"] = "1",
        }, layout.RankVariables(2));
        Assert.StartsWith("Nodes=2: a published manifest holds the whole run", Assert.Throws<ArgumentException>(() => Launch(true, Node(2, 0, 2))).Message);
    }

    [Fact]
    public void Published_trainers_get_no_thread_count_and_a_relative_output_unless_given()
    {
        var published = Launch(true, ("RunId", "r1"));
        Assert.Null(published.ThreadsPerRank);
        Assert.Equal("runs/r1", published.Output);

        var local = Launch(false, ("RunId", "r1"));
        Assert.NotNull(local.ThreadsPerRank);
        Assert.Equal(Path.Combine("/repo", "runs", "r1"), local.Output);
        Assert.Equal(4, Launch(true, ("ThreadsPerRank", "4")).ThreadsPerRank);
    }

    [Fact]
    public void Trainers_restart_the_group_three_times_by_default_and_MaxRestarts_changes_it()
    {
        Assert.Equal(["--max-restarts", "3"], After(Launch(false).TrainerArgs, "--max-restarts"));
        Assert.Equal(["--max-restarts", "0"], After(Launch(false, ("MaxRestarts", "0")).TrainerArgs, "--max-restarts"));
        Assert.Equal(["--max-restarts", "7"], After(Launch(false, ("MaxRestarts", "7")).TrainerArgs, "--max-restarts"));
        Assert.DoesNotContain("--max-restarts", Launch(false, ("Command", "check")).TrainerArgs);
    }

    [Fact]
    public void A_max_restarts_in_TrainerArgs_is_not_given_twice()
    {
        var args = Launch(false, ("TrainerArgs", "--max-restarts 1 --epochs 2")).TrainerArgs;

        Assert.Single(args, a => a == "--max-restarts");
        Assert.Equal(["--max-restarts", "1"], After(args, "--max-restarts"));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1001")]
    [InlineData("three")]
    public void A_bad_MaxRestarts_is_refused_naming_it_and_the_range(string value)
    {
        var error = Assert.Throws<ArgumentException>(() => Launch(false, ("MaxRestarts", value)));

        Assert.Equal($"MaxRestarts must be a whole number from 0 to 1000, not '{value}'. Example: --MaxRestarts 2", error.Message);
    }

    private static string[] After(IReadOnlyList<string> args, string option) =>
        [.. args.Skip(args.ToList().IndexOf(option)).Take(2)];
}
