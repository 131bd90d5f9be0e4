using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

public class RendezvousTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly CapturingLogger _log = new();

    private static DistributedContract Rank(int rank, int worldSize, int port, string runId = "run-a", string? secret = null) =>
        new(rank, rank, worldSize, worldSize, 0, "127.0.0.1", port, runId, 0, secret, null);

    private static RendezvousOptions Options(double joinSeconds = 30) =>
        new() { JoinTimeout = TimeSpan.FromSeconds(joinSeconds), LeaveTimeout = TimeSpan.FromSeconds(10) };

    /// <summary>Each rank joins on its own thread, as separate processes would.</summary>
    private Task<RendezvousSession>[] JoinAll(IEnumerable<DistributedContract> ranks, RendezvousOptions options) =>
        ranks.Select(contract => Task.Run(() => Rendezvous.JoinAsync(contract, options, _log, CancellationToken.None))).ToArray();

    private static async Task DisposeAllAsync(IEnumerable<Task<RendezvousSession>> joins)
    {
        var sessions = new List<RendezvousSession>();
        foreach (var join in joins)
            if (join.IsCompletedSuccessfully)
                sessions.Add(join.Result);
        await Task.WhenAll(sessions.Select(session => session.DisposeAsync().AsTask())).WaitAsync(Patience);
    }

    [Fact]
    public async Task ThreeRanksJoinAgreeAndShareTheStore()
    {
        var port = FreeTcpPort.Next();
        // Highest rank first: ranks 1 and 2 must retry until rank 0 serves the store.
        var joins = JoinAll([Rank(2, 3, port), Rank(1, 3, port)], Options());
        await Task.Delay(300);
        joins = [.. joins, .. JoinAll([Rank(0, 3, port)], Options())];
        try
        {
            var sessions = await Task.WhenAll(joins).WaitAsync(Patience);

            Assert.Equal([2, 1, 0], sessions.Select(session => session.Contract.Rank));
            Assert.All(sessions, session => Assert.Equal(IPAddress.Loopback, session.AdvertiseAddress));
            Assert.All(sessions, session => Assert.Equal("rdzv/0/", session.KeyPrefix));
            Assert.All(sessions, session => Assert.InRange(session.JoinTime, TimeSpan.Zero, Patience));
            await sessions[0].Store.SetAsync("from-rank-2", Encoding.UTF8.GetBytes("hello"));
            Assert.Equal("hello", Encoding.UTF8.GetString(await sessions[2].Store.GetAsync("from-rank-2", TimeSpan.FromSeconds(10))));
        }
        finally
        {
            await DisposeAllAsync(joins);
        }
    }

    [Fact]
    public async Task RankZeroKeepsTheStoreUpUntilEveryRankHasLeft()
    {
        var port = FreeTcpPort.Next();
        var joins = JoinAll([Rank(0, 2, port), Rank(1, 2, port)], Options());
        var sessions = await Task.WhenAll(joins).WaitAsync(Patience);

        var rank0Leaving = sessions[0].DisposeAsync().AsTask();
        await Task.Delay(300);
        Assert.False(rank0Leaving.IsCompleted);
        await sessions[1].Store.SetAsync("still", "served"u8.ToArray());
        await sessions[1].DisposeAsync();

        await rank0Leaving.WaitAsync(Patience);
    }

    [Fact]
    public async Task AMismatchedRunIdFailsEveryRankWithBothValues()
    {
        var port = FreeTcpPort.Next();
        var joins = JoinAll([Rank(0, 3, port), Rank(1, 3, port, runId: "run-b"), Rank(2, 3, port)], Options());

        var errors = new List<ContractException>();
        foreach (var join in joins)
            errors.Add(await Assert.ThrowsAsync<ContractException>(() => join.WaitAsync(Patience)));

        Assert.All(errors, error =>
        {
            Assert.Contains("rank 1 has TORCHELASTIC_RUN_ID=run-b but rank 0 has TORCHELASTIC_RUN_ID=run-a", error.Message);
            Assert.Contains("start every rank with the same TORCHELASTIC_RUN_ID", error.Message);
        });
    }

    [Fact]
    public async Task AMismatchedWorldSizeFailsEveryRankWithBothValues()
    {
        var port = FreeTcpPort.Next();
        var joins = JoinAll([Rank(0, 3, port), Rank(1, 3, port), Rank(2, 4, port)], Options());

        foreach (var join in joins)
        {
            var error = await Assert.ThrowsAsync<ContractException>(() => join.WaitAsync(Patience));
            Assert.Contains("rank 2 has WORLD_SIZE=4 but rank 0 has WORLD_SIZE=3", error.Message);
        }
    }

    [Fact]
    public async Task ARankThatNeverArrivesFailsTheOthersAtTheJoinTimeout()
    {
        var port = FreeTcpPort.Next();
        var clock = Stopwatch.StartNew();
        var joins = JoinAll([Rank(0, 3, port), Rank(1, 3, port)], Options(joinSeconds: 2));

        foreach (var join in joins)
        {
            var error = await Assert.ThrowsAsync<TimeoutException>(() => join.WaitAsync(Patience));
            Assert.Contains("rendezvous timed out after 2 s", error.Message);
            Assert.Contains("rank(s) 2 of WORLD_SIZE=3 never arrived", error.Message);
        }
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), Patience);
    }

    [Fact]
    public async Task WithoutRankZeroTheOthersGiveUpAtTheJoinTimeout()
    {
        var port = FreeTcpPort.Next();

        var error = await Assert.ThrowsAsync<TimeoutException>(() =>
            Rendezvous.JoinAsync(Rank(1, 2, port), Options(joinSeconds: 1), _log, CancellationToken.None).WaitAsync(Patience));

        Assert.Contains($"could not reach the store at 127.0.0.1:{port} within 1 s", error.Message);
        Assert.Contains("check MASTER_ADDR and MASTER_PORT", error.Message);
    }

    [Fact]
    public async Task TwoProcessesClaimingOneRankAreTold()
    {
        var port = FreeTcpPort.Next();
        var joins = JoinAll([Rank(0, 2, port), Rank(1, 2, port), Rank(1, 2, port)], Options());
        try
        {
            await Task.WhenAll(joins[0], Task.WhenAny(joins[1], joins[2])).WaitAsync(Patience);
            await Task.WhenAll(joins.Select(join => join.ContinueWith(_ => { }))).WaitAsync(Patience);

            var loser = Assert.Single(joins, join => join.IsFaulted);
            var error = Assert.IsType<ContractException>(loser.Exception!.InnerException);
            Assert.Contains("RANK=1 is already taken by pid", error.Message);
            Assert.Contains("give every process a distinct RANK", error.Message);
            Assert.True(joins[0].IsCompletedSuccessfully);
        }
        finally
        {
            await DisposeAllAsync(joins);
        }
    }

    [Fact]
    public async Task MatchingSecretsJoinAndAWrongSecretIsAContractError()
    {
        var port = FreeTcpPort.Next();
        var joins = JoinAll([Rank(0, 2, port, secret: "s1"), Rank(1, 2, port, secret: "s1")], Options());
        try
        {
            await Task.WhenAll(joins).WaitAsync(Patience);

            var error = await Assert.ThrowsAsync<ContractException>(() =>
                Rendezvous.JoinAsync(Rank(1, 2, port, secret: "s2"), Options(), _log, CancellationToken.None).WaitAsync(Patience));
            Assert.Contains("TRAINER_RUN_SECRET", error.Message);
            Assert.Contains("refused this rank", error.Message);
        }
        finally
        {
            await DisposeAllAsync(joins);
        }
    }

    [Fact]
    public async Task ATakenMasterPortIsAContractErrorForRankZero()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;

        var error = await Assert.ThrowsAsync<ContractException>(() =>
            Rendezvous.JoinAsync(Rank(0, 2, port), Options(), _log, CancellationToken.None).WaitAsync(Patience));

        Assert.Contains($"MASTER_PORT={port}", error.Message);
        Assert.Contains("already in use", error.Message);
    }

    [Fact]
    public async Task AWorldOfOneJoinsAlone()
    {
        var port = FreeTcpPort.Next();

        await using var session = await Rendezvous.JoinAsync(Rank(0, 1, port), Options(), _log, CancellationToken.None).WaitAsync(Patience);

        Assert.Equal(1, session.Contract.WorldSize);
        Assert.Equal(2, await session.Store.AddAsync("n", 2));
    }
}
