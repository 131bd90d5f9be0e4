using Trainer.Distributed;

namespace Trainer.Tests.Distributed;

public class ContractTests
{
    private const string World3 = "WORLD_SIZE=3;MASTER_ADDR=127.0.0.1;MASTER_PORT=29500";

    /// <summary>"NAME=value;NAME=value" (a value may be empty) → the environment dictionary.</summary>
    private static Dictionary<string, string?> Env(string spec) =>
        spec.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .ToDictionary(parts => parts[0], parts => (string?)parts[1]);

    [Fact]
    public void NoVariablesMeansAWorldOfOne()
    {
        var contract = DistributedContract.FromEnvironment(Env(""));

        Assert.Equal(new DistributedContract(0, 0, 1, 1, 0, "127.0.0.1", 29500, "none", 0, null, null), contract);
        Assert.True(contract.IsMaster);
    }

    [Theory]
    //          environment                                                                                   rank local world lworld group addr          port  run   restart threads
    [InlineData("RANK=1;" + World3, 1, 1, 3, 3, 0, "127.0.0.1", 29500, "none", 0, null)]
    [InlineData("RANK=2;LOCAL_RANK=0;LOCAL_WORLD_SIZE=1;GROUP_RANK=2;" + World3, 2, 0, 3, 1, 2, "127.0.0.1", 29500, "none", 0, null)]
    [InlineData("RANK=0;WORLD_SIZE=2;MASTER_ADDR=node-a.cluster;MASTER_PORT=1;TORCHELASTIC_RUN_ID=8f3a;TORCHELASTIC_RESTART_COUNT=4", 0, 0, 2, 2, 0, "node-a.cluster", 1, "8f3a", 4, null)]
    [InlineData("RANK=3;WORLD_SIZE=4;MASTER_ADDR=::1;MASTER_PORT=65535;TRAINER_THREADS=4", 3, 3, 4, 4, 0, "::1", 65535, "none", 0, 4)]
    [InlineData("MASTER_PORT=29511", 0, 0, 1, 1, 0, "127.0.0.1", 29511, "none", 0, null)]
    [InlineData("RANK= 1 ;WORLD_SIZE=3;MASTER_ADDR=localhost;MASTER_PORT=29500;TORCHELASTIC_RUN_ID=", 1, 1, 3, 3, 0, "localhost", 29500, "none", 0, null)]
    public void GoodEnvironments(string spec, int rank, int localRank, int worldSize, int localWorldSize, int groupRank, string masterAddr, int masterPort,
        string runId, int restartCount, int? threads)
    {
        var contract = DistributedContract.FromEnvironment(Env(spec));

        Assert.Equal(new DistributedContract(rank, localRank, worldSize, localWorldSize, groupRank, masterAddr, masterPort, runId, restartCount, null, threads),
            contract);
    }

    [Theory]
    [InlineData("RANK=0;WORLD_SIZE=2;MASTER_PORT=29500", "MASTER_ADDR is not set", "set MASTER_ADDR to")]
    [InlineData("RANK=0;WORLD_SIZE=2;MASTER_ADDR=127.0.0.1", "MASTER_PORT is not set", "set MASTER_PORT to")]
    [InlineData("RANK=0;MASTER_ADDR=127.0.0.1;MASTER_PORT=29500", "WORLD_SIZE is not set but RANK is", "set WORLD_SIZE to")]
    [InlineData(World3, "RANK is not set but WORLD_SIZE is", "set RANK to")]
    [InlineData("RANK=3;" + World3, "RANK=3 is out of range for WORLD_SIZE=3", "set RANK to 0..2")]
    [InlineData("RANK=one;" + World3, "RANK='one' is not a whole number", "set RANK to")]
    [InlineData("RANK=1.5;" + World3, "RANK='1.5' is not a whole number", "set RANK to")]
    [InlineData("RANK=-1;" + World3, "RANK=-1 is negative", "set RANK to")]
    [InlineData("RANK=0;WORLD_SIZE=0;MASTER_ADDR=127.0.0.1;MASTER_PORT=29500", "WORLD_SIZE=0 must be at least 1", "set WORLD_SIZE to")]
    [InlineData("RANK=0;WORLD_SIZE=99999999999;MASTER_ADDR=127.0.0.1;MASTER_PORT=29500", "WORLD_SIZE=99999999999 is too large", "set WORLD_SIZE to")]
    [InlineData("RANK=1;LOCAL_RANK=2;LOCAL_WORLD_SIZE=2;" + World3, "LOCAL_RANK=2 is out of range for LOCAL_WORLD_SIZE=2", "set LOCAL_RANK to 0..1")]
    [InlineData("RANK=2;LOCAL_WORLD_SIZE=2;" + World3, "LOCAL_RANK=2 (not set, so RANK) is out of range for LOCAL_WORLD_SIZE=2", "set LOCAL_RANK to 0..1")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=4;" + World3, "LOCAL_WORLD_SIZE=4 exceeds WORLD_SIZE=3", "set LOCAL_WORLD_SIZE to")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=0;" + World3, "LOCAL_WORLD_SIZE=0 must be at least 1", "set LOCAL_WORLD_SIZE to")]
    [InlineData("RANK=0;GROUP_RANK=x;" + World3, "GROUP_RANK='x' is not a whole number", "set GROUP_RANK to")]
    [InlineData("RANK=0;WORLD_SIZE=3;MASTER_ADDR=127.0.0.1;MASTER_PORT=0", "MASTER_PORT=0 is out of range", "1..65535")]
    [InlineData("RANK=0;WORLD_SIZE=3;MASTER_ADDR=127.0.0.1;MASTER_PORT=65536", "MASTER_PORT=65536 is out of range", "1..65535")]
    [InlineData("RANK=0;WORLD_SIZE=3;MASTER_ADDR=127.0.0.1;MASTER_PORT=http", "MASTER_PORT='http' is not a whole number", "1..65535")]
    [InlineData("RANK=0;WORLD_SIZE=3;MASTER_ADDR=bad host!;MASTER_PORT=29500", "MASTER_ADDR='bad host!' is not a host name or IP address", "set MASTER_ADDR to")]
    [InlineData("TORCHELASTIC_RESTART_COUNT=-2", "TORCHELASTIC_RESTART_COUNT=-2 is negative", "restart round")]
    [InlineData("TRAINER_THREADS=0", "TRAINER_THREADS=0: must be a whole number from 1 to 1024", "torch threads per rank")]
    [InlineData("TRAINER_THREADS=many", "TRAINER_THREADS=many: must be a whole number from 1 to 1024", "fix or unset it")]
    [InlineData("TRAINER_THREADS=5000", "TRAINER_THREADS=5000: must be a whole number from 1 to 1024", "fix or unset it")]
    [InlineData("OMP_NUM_THREADS=0", "OMP_NUM_THREADS=0: must be a whole number from 1 to 1024", "fix or unset it")]
    [InlineData("TRAINER_RUN_SECRET=", "TRAINER_RUN_SECRET is set but empty", "openssl rand")]
    [InlineData("LOCAL_RANK=1", "LOCAL_RANK=1 is out of range for LOCAL_WORLD_SIZE=1", "set LOCAL_RANK to 0..0")]
    public void BadEnvironmentsNameTheVariableAndTheFix(string spec, string problem, string fix)
    {
        var error = Assert.Throws<ContractException>(() => DistributedContract.FromEnvironment(Env(spec)));

        Assert.Contains(problem, error.Message);
        Assert.Contains(fix, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void SecretAndThreadsAreReadButTheSecretIsNeverPrinted()
    {
        var contract = DistributedContract.FromEnvironment(Env("RANK=1;TRAINER_RUN_SECRET=s3cr3t-value;TRAINER_THREADS=2;" + World3));

        Assert.Equal("s3cr3t-value", contract.RunSecret);
        Assert.Equal(2, contract.Threads);
        Assert.DoesNotContain("s3cr3t-value", contract.ToString());
        Assert.Contains("rank 1/3", contract.ToString());
    }

    [Theory]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=2;" + World3, 2, 1, "2 cores / LOCAL_WORLD_SIZE 2 → 1 thread per rank")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=3;" + World3, 2, 1, "2 cores / LOCAL_WORLD_SIZE 3 → 1 thread per rank")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=2;" + World3, 16, 8, "16 cores / LOCAL_WORLD_SIZE 2 → 8 threads per rank")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=2;OMP_NUM_THREADS=3;" + World3, 16, 3, "OMP_NUM_THREADS=3")]
    [InlineData("RANK=0;LOCAL_WORLD_SIZE=2;OMP_NUM_THREADS=3;TRAINER_THREADS=5;" + World3, 16, 5, "TRAINER_THREADS=5")]
    public void ThreadsPerRankShareTheNodesCoresUnlessTheEnvironmentSetsThem(string spec, int cores, int threads, string reason) =>
        Assert.Equal((threads, reason), DistributedContract.FromEnvironment(Env(spec)).ThreadsPerRank(cores));

    [Theory]
    [InlineData("", 300.0)]
    [InlineData("TRAINER_JOIN_TIMEOUT=2", 2.0)]
    [InlineData("TRAINER_JOIN_TIMEOUT=0.5", 0.5)]
    public void JoinTimeoutComesFromTheEnvironment(string spec, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), RendezvousOptions.FromEnvironment(Env(spec)).JoinTimeout);

    [Theory]
    [InlineData("TRAINER_JOIN_TIMEOUT=0")]
    [InlineData("TRAINER_JOIN_TIMEOUT=-5")]
    [InlineData("TRAINER_JOIN_TIMEOUT=soon")]
    [InlineData("TRAINER_JOIN_TIMEOUT=NaN")]
    public void BadJoinTimeoutIsAContractError(string spec)
    {
        var error = Assert.Throws<ContractException>(() => RendezvousOptions.FromEnvironment(Env(spec)));

        Assert.Contains("TRAINER_JOIN_TIMEOUT=", error.Message);
        Assert.Contains("positive number of seconds", error.Message);
    }
}
