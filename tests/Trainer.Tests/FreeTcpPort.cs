using System.Net;
using System.Net.Sockets;

namespace Trainer.Tests;

/// <summary>A loopback TCP port that was free a moment ago (the OS picks it), for servers a test cannot bind to port 0.</summary>
public static class FreeTcpPort
{
    public static int Next()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
