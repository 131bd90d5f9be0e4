using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Trainer.Distributed.Store;

namespace Trainer.Distributed;

/// <summary>
/// Where rank 0's store listens: on the one address MASTER_ADDR names, so a single-node run (MASTER_ADDR=127.0.0.1
/// or localhost) is reachable from this machine only, and a multi-node run only on the interface the other nodes
/// use. When MASTER_ADDR is not an address of this host (a NAT or a cluster service address) the store listens on
/// every interface instead, with a warning; the run secret still keeps strangers out.
/// </summary>
internal static class MasterStore
{
    /// <summary>The address rank 0 advertises (IPv4 first) and the one its store binds to.</summary>
    /// <exception cref="ContractException">MASTER_ADDR resolves to nothing.</exception>
    public static async Task<(IPAddress Advertise, IPAddress Bind)> ResolveAsync(DistributedContract contract, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(contract.MasterAddr.Trim('[', ']'), out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(contract.MasterAddr, cancellationToken);
        }
        catch (SocketException e)
        {
            throw new ContractException($"MASTER_ADDR='{contract.MasterAddr}' does not resolve ({e.Message}); set MASTER_ADDR to rank 0's host name or IP address.");
        }
        if (addresses.Length == 0)
            throw new ContractException($"MASTER_ADDR='{contract.MasterAddr}' resolves to no address; set MASTER_ADDR to rank 0's host name or IP address.");
        var address = ListenAddress(addresses);
        return (address, address);
    }

    /// <summary>
    /// The address MASTER_ADDR names for the other ranks: a non-loopback one where there is one (other machines must
    /// reach it), else the loopback address itself (127.0.1.1 is what Debian gives the host name), IPv4 first.
    /// </summary>
    public static IPAddress ListenAddress(IReadOnlyList<IPAddress> addresses)
    {
        var reachable = addresses.Where(address => !IPAddress.IsLoopback(address)).ToArray();
        var pool = reachable.Length > 0 ? reachable : addresses;
        return pool.FirstOrDefault(address => address.AddressFamily == AddressFamily.InterNetwork) ?? pool[0];
    }

    /// <summary>Serves the store on <paramref name="bind"/>:MASTER_PORT.</summary>
    /// <exception cref="ContractException">MASTER_PORT is taken (the message says how to find by whom).</exception>
    public static StoreServer Start(DistributedContract contract, IPAddress bind, ILogger logger)
    {
        var options = new StoreServerOptions { Secret = contract.RunSecret };
        try
        {
            try
            {
                return StoreServer.Start(bind, contract.MasterPort, options, logger);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
            {
                var any = Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any;
                logger.LogWarning("store: MASTER_ADDR={MasterAddr} ({Address}) is not an address of this host; listening on every interface instead", contract.MasterAddr, bind);
                return StoreServer.Start(any, contract.MasterPort, options, logger);
            }
        }
        catch (StoreException e)
        {
            throw new ContractException($"MASTER_PORT={contract.MasterPort}: {e.Message}");
        }
    }
}
