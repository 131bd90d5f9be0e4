using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;

namespace AppHost;

/// <summary>
/// Where this app host's trainers sit in a run over several machines, torchrun's --nnodes, --node-rank,
/// --master-addr and --master-port: every node runs one app host with the same Nodes, Trainers, RunId, MasterAddr,
/// MasterPort and run secret, and starts only its own ranks. Node 0's first trainer serves the rendezvous store.
/// <paramref name="ContainerPerRank"/>: a published manifest, where every trainer becomes a container of its own, so a
/// node of one rank (LOCAL_RANK 0 on its own GPU, GROUP_RANK = RANK).
/// </summary>
public sealed record NodeLayout(int Nodes, int NodeRank, int LocalWorldSize, string MasterAddr, int? MasterPort, bool ContainerPerRank = false)
{
    public const int DefaultMasterPort = LaunchContract.DefaultMasterPort;
    public const string LoopbackAddr = "127.0.0.1";
    public const string RunSecretKey = "Parameters:run-secret";

    public int WorldSize => Nodes * LocalWorldSize;

    /// <summary>Node 0 runs global rank 0, so the store; the other nodes connect to it.</summary>
    public bool HostsStore => NodeRank == 0;

    public bool IsMultiNode => Nodes > 1;

    /// <summary>torchrun's numbering: node after node, LOCAL_WORLD_SIZE ranks each.</summary>
    public int GlobalRank(int localRank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(localRank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(localRank, LocalWorldSize);
        return NodeRank * LocalWorldSize + localRank;
    }

    /// <summary>The rank variables of the contract for local rank <paramref name="localRank"/> of this node.</summary>
    public IReadOnlyDictionary<string, string> RankVariables(int localRank) => new Dictionary<string, string>
    {
        [LaunchContract.Rank] = GlobalRank(localRank).ToString(),
        [LaunchContract.LocalRank] = ContainerPerRank ? "0" : localRank.ToString(),
        [LaunchContract.GroupRank] = (ContainerPerRank ? GlobalRank(localRank) : NodeRank).ToString(),
        [LaunchContract.WorldSize] = WorldSize.ToString(),
        [LaunchContract.LocalWorldSize] = ContainerPerRank ? "1" : LocalWorldSize.ToString(),
    };

    /// <summary>
    /// Nodes (default 1), NodeRank (default 0), MasterAddr (node 0's address; required with Nodes &gt; 1, else 127.0.0.1)
    /// and MasterPort (default 29500 with Nodes &gt; 1, else a free port). With Nodes &gt; 1 every node must also be given
    /// the same RunId and Parameters:run-secret, which a node cannot make up on its own.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range or missing; the message names it and shows the fix.</exception>
    /// <param name="publishing">Writing a manifest: one container per rank, and the manifest holds the whole run (one node).</param>
    public static NodeLayout FromConfiguration(IConfiguration configuration, int localWorldSize, bool publishing = false)
    {
        var nodes = ReadInt(configuration, "Nodes", 1, min: 1, max: 4096, example: "--Nodes 2");
        if (publishing && nodes > 1)
            throw new ArgumentException(
                $"Nodes={nodes}: a published manifest holds the whole run, every trainer a container of its own; leave Nodes at 1 and set --Trainers to the number of ranks.");
        var nodeRank = ReadInt(configuration, "NodeRank", 0, min: 0, max: nodes - 1,
            example: nodes > 1 ? $"--NodeRank 1 (0..{nodes - 1}, one per machine)" : "--Nodes 2 --NodeRank 1");
        var masterAddr = configuration["MasterAddr"];
        if (masterAddr is { Length: > 0 } && Uri.CheckHostName(masterAddr.Trim('[', ']')) == UriHostNameType.Unknown)
            throw new ArgumentException($"MasterAddr must be a host name or IP address, not '{masterAddr}'. Example: --MasterAddr 10.0.0.4");
        int? masterPort = string.IsNullOrEmpty(configuration["MasterPort"])
            ? null
            : ReadInt(configuration, "MasterPort", DefaultMasterPort, min: 1, max: 65535, example: $"--MasterPort {LaunchContract.DefaultMasterPort}");
        if (nodes > 1)
        {
            if (masterAddr is not { Length: > 0 })
                throw new ArgumentException(
                    $"Nodes={nodes} needs MasterAddr: the host name or IP address of node 0 that every node can reach, the same on every node. Example: --MasterAddr 10.0.0.4");
            if (configuration["RunId"] is not { Length: > 0 })
                throw new ArgumentException($"Nodes={nodes} needs RunId: the same run id on every node, or the rendezvous refuses them. Example: --RunId cifar-1");
            if (configuration[RunSecretKey] is not { Length: > 0 })
                throw new ArgumentException(
                    $"Nodes={nodes} needs {RunSecretKey}: the same store secret on every node (one node cannot generate it for the others). Example: --{RunSecretKey} $(openssl rand -hex 16)");
            masterPort ??= DefaultMasterPort;
        }
        return new NodeLayout(nodes, nodeRank, localWorldSize, masterAddr is { Length: > 0 } ? masterAddr : LoopbackAddr, masterPort, publishing);
    }

    /// <summary>
    /// On node 0 of a multi-node run: a warning when MasterAddr resolves only to loopback, which the other nodes
    /// cannot reach (fine when all "nodes" are this machine); null when it is a reachable-looking address.
    /// </summary>
    public string? LoopbackWarning()
    {
        if (!IsMultiNode || !HostsStore) return null;
        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(MasterAddr.Trim('[', ']'), out var literal) ? [literal] : Dns.GetHostAddresses(MasterAddr);
        }
        catch (SocketException e)
        {
            return $"MasterAddr {MasterAddr} does not resolve on this machine ({e.SocketErrorCode}); rank 0 cannot serve the store there.";
        }
        return addresses.All(IPAddress.IsLoopback)
            ? $"MasterAddr {MasterAddr} is a loopback address here: only ranks on this machine can reach the store; give node 0's network address for other machines."
            : null;
    }

    public string Describe() => IsMultiNode
        ? $"node {NodeRank} of {Nodes} (global ranks {GlobalRank(0)}..{GlobalRank(LocalWorldSize - 1)} of {WorldSize}), store at {MasterAddr}:{MasterPort}{(HostsStore ? " served by this node" : "")}"
        : "one node";

    static int ReadInt(IConfiguration configuration, string key, int fallback, int min, int max, string example)
    {
        var text = configuration[key];
        if (string.IsNullOrEmpty(text)) return fallback;
        if (!int.TryParse(text, out var value) || value < min || value > max)
            throw new ArgumentException($"{key} must be a whole number from {min} to {max}, not '{text}'. Example: {example}");
        return value;
    }
}
