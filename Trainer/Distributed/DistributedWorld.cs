using Microsoft.Extensions.Logging;

namespace Trainer.Distributed;

/// <summary>
/// torch.distributed.init_process_group(init_method="env://"): the rendezvous from the environment contract, then
/// the process group of all ranks on its store. Disposing leaves the group, then the rendezvous.
/// </summary>
internal sealed class DistributedWorld : IAsyncDisposable
{
    public const string BackendVariable = "TRAINER_BACKEND";
    public const string TimeoutVariable = "TRAINER_COLLECTIVE_TIMEOUT";

    private DistributedWorld(RendezvousSession session, ProcessGroup group)
    {
        Session = session;
        Group = group;
    }

    public RendezvousSession Session { get; }

    public ProcessGroup Group { get; }

    public DistributedContract Contract => Session.Contract;

    public static async Task<DistributedWorld> InitAsync(DistributedContract contract, RendezvousOptions rendezvous, ProcessGroupOptions options,
        ILogger logger, CancellationToken cancellationToken)
    {
        var session = await Rendezvous.JoinAsync(contract, rendezvous, logger, cancellationToken);
        try
        {
            var groupOptions = options with
            {
                KeyPrefix = session.KeyPrefix + "pg", Generation = contract.RestartCount, LocalRank = contract.LocalRank, Secret = contract.RunSecret,
            };
            var group = await ProcessGroup.CreateAsync(groupOptions, session.Store, contract.Rank, contract.WorldSize, session.AdvertiseAddress, cancellationToken);
            logger.LogInformation("Rank {Rank}/{WorldSize} joined process group ({Backend}) in {Seconds:0.00} s", contract.Rank, contract.WorldSize, group.Backend, session.JoinTime.TotalSeconds);
            return new DistributedWorld(session, group);
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>TRAINER_BACKEND (auto, cpu, nccl) and TRAINER_COLLECTIVE_TIMEOUT (seconds) over the defaults.</summary>
    public static ProcessGroupOptions OptionsFromEnvironment(IReadOnlyDictionary<string, string?> environment)
    {
        var options = new ProcessGroupOptions();
        if (environment.GetValueOrDefault(BackendVariable) is { Length: > 0 } backend)
        {
            if (!Enum.TryParse<Backend>(backend, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed))
                throw new ContractException($"{BackendVariable}={backend} is not a backend; use auto, cpu or nccl.");
            options = options with { Backend = parsed };
        }
        if (environment.GetValueOrDefault(TimeoutVariable) is { Length: > 0 } timeout)
        {
            if (!double.TryParse(timeout, System.Globalization.CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > 86_400)
                throw new ContractException($"{TimeoutVariable}={timeout} is not a number of seconds from 0 to 86400; the default is 600.");
            options = options with { Timeout = TimeSpan.FromSeconds(seconds) };
        }
        return options;
    }

    public static ProcessGroupOptions OptionsFromEnvironment() =>
        OptionsFromEnvironment(Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value));

    public async ValueTask DisposeAsync()
    {
        Group.Dispose();
        await Session.DisposeAsync();
    }

    /// <summary>Leaves after a failure without waiting for the other ranks (see <see cref="RendezvousSession.AbortAsync"/>).</summary>
    public async ValueTask AbortAsync()
    {
        Group.Dispose();
        await Session.AbortAsync();
    }
}
