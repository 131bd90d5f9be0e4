using System.Net;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

/// <summary>Where rank 0's store listens: the address MASTER_ADDR names (loopback for a one-machine run, the interface other machines use otherwise).</summary>
public class StoreBindAddressTests
{
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("127.0.1.1", "127.0.1.1")]
    [InlineData("::1", "::1")]
    [InlineData("::1,127.0.0.1", "127.0.0.1")]
    public void A_loopback_master_addr_keeps_the_store_on_that_loopback_address(string resolved, string expected)
    {
        var addresses = resolved.Split(',').Select(IPAddress.Parse).ToArray();

        Assert.Equal(IPAddress.Parse(expected), MasterStore.ListenAddress(addresses));
    }

    [Theory]
    [InlineData("10.1.2.3", "10.1.2.3")]
    [InlineData("fd00::5", "fd00::5")]
    [InlineData("127.0.0.1,192.168.1.20", "192.168.1.20")]
    [InlineData("fd00::5,10.1.2.3", "10.1.2.3")]
    public void Any_other_master_addr_listens_on_the_interface_the_other_nodes_use(string resolved, string expected)
    {
        var addresses = resolved.Split(',').Select(IPAddress.Parse).ToArray();

        Assert.Equal(IPAddress.Parse(expected), MasterStore.ListenAddress(addresses));
    }

    [Fact]
    public async Task Two_ranks_meet_on_127_0_1_1_the_address_debian_gives_the_host_name()
    {
        var port = FreeTcpPort.Next();
        var ranks = Enumerable.Range(0, 2).Select(rank => TrainerProcess.Start(["check"], new Dictionary<string, string?>
        {
            ["RANK"] = $"{rank}", ["WORLD_SIZE"] = "2", ["MASTER_ADDR"] = "127.0.1.1", ["MASTER_PORT"] = $"{port}",
            ["TRAINER_JOIN_TIMEOUT"] = "60", ["TRAINER_THREADS"] = "1",
        })).ToList();
        try
        {
            foreach (var result in await Task.WhenAll(ranks.Select(r => r.WaitAsync(TimeSpan.FromSeconds(90)))))
            {
                Assert.True(result.ExitCode == 0, result.ToString());
                Assert.Contains($"joined 127.0.1.1:{port}", result.StandardOutput);
            }
        }
        finally
        {
            ranks.ForEach(r => r.Dispose());
        }
    }
}
