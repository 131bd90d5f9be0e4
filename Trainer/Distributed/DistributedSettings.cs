namespace Trainer.Distributed;

/// <summary>
/// Everything init_process_group("env://") reads from the environment: who this rank is (torchrun's contract), how
/// it rendezvouses (TRAINER_JOIN_TIMEOUT, …) and its process group's backend and timeout (TRAINER_BACKEND,
/// TRAINER_COLLECTIVE_TIMEOUT). Read once, up front, so a bad value stops the process before anything starts.
/// </summary>
internal sealed record DistributedSettings(DistributedContract Contract, RendezvousOptions Rendezvous, ProcessGroupOptions Group)
{
    /// <exception cref="ContractException">A variable is missing, malformed or out of range; the message names it.</exception>
    public static DistributedSettings FromEnvironment() =>
        new(DistributedContract.FromEnvironment(), RendezvousOptions.FromEnvironment(), DistributedWorld.OptionsFromEnvironment());
}
