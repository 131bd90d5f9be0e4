namespace Trainer.Tests.Faults;

/// <summary>
/// The fault tests run real multi-process runs (up to 16 processes) and time how fast failures are noticed; they
/// run after the other collections and alone, so neither disturbs the other's timing on two cores. The in-process
/// ones share it too: they redirect the console and set torch's (process-wide) thread count.
/// </summary>
[CollectionDefinition("Faults", DisableParallelization = true)]
public sealed class FaultsCollection;
