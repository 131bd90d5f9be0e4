using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Trainer.Distributed;
using Trainer.Tests.Distributed;

namespace Trainer.Tests.Faults;

/// <summary>Rank 0's store listens only where it must: loopback for a single-node run, MASTER_ADDR's interface otherwise.</summary>
public sealed class MasterStoreTests
{
    private static DistributedContract Contract(string masterAddr, int port = 0) =>
        DistributedContract.FromEnvironment(new Dictionary<string, string?>
        {
            ["RANK"] = "0", ["WORLD_SIZE"] = "2", ["MASTER_ADDR"] = masterAddr, ["MASTER_PORT"] = $"{(port == 0 ? FreeTcpPort.Next() : port)}",
        });

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task A_loopback_master_address_serves_on_loopback_only(string masterAddr)
    {
        var contract = Contract(masterAddr);
        var (advertise, bind) = await MasterStore.ResolveAsync(contract, CancellationToken.None);

        await using var server = MasterStore.Start(contract, bind, new CapturingLogger());

        Assert.True(IPAddress.IsLoopback(advertise));
        Assert.Equal(IPAddress.Loopback, server.EndPoint.Address);
    }

    [LocalAddressFact]
    public async Task A_master_address_of_this_host_serves_on_that_interface_only()
    {
        var local = LocalAddressFactAttribute.NonLoopbackIPv4!;
        var contract = Contract(local.ToString());
        var (_, bind) = await MasterStore.ResolveAsync(contract, CancellationToken.None);

        await using var server = MasterStore.Start(contract, bind, new CapturingLogger());

        Assert.Equal(local, server.EndPoint.Address);
    }

    [Fact]
    public async Task A_master_address_that_is_not_this_hosts_falls_back_to_every_interface_with_a_warning()
    {
        var contract = Contract("192.0.2.1"); // TEST-NET-1: never assigned to a real host; binding to it contacts nothing
        var (_, bind) = await MasterStore.ResolveAsync(contract, CancellationToken.None);
        var log = new CapturingLogger();

        await using var server = MasterStore.Start(contract, bind, log);

        Assert.True(server.EndPoint.Address.Equals(IPAddress.IPv6Any) || server.EndPoint.Address.Equals(IPAddress.Any));
        Assert.Contains(log.Lines, line => line.Contains("is not an address of this host; listening on every interface instead"));
    }
}

/// <summary>Runs only on a machine with a non-loopback IPv4 address to bind to (binding contacts nothing).</summary>
public sealed class LocalAddressFactAttribute : FactAttribute
{
    public static readonly IPAddress? NonLoopbackIPv4 = NetworkInterface.GetAllNetworkInterfaces()
        .Where(n => n.OperationalStatus == OperationalStatus.Up)
        .SelectMany(n => n.GetIPProperties().UnicastAddresses)
        .Select(a => a.Address)
        .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));

    public LocalAddressFactAttribute()
    {
        if (NonLoopbackIPv4 is null)
            Skip = "this machine has no non-loopback IPv4 address";
    }
}
