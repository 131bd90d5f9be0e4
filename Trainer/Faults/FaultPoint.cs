namespace Trainer.Faults;

/// <summary>Where <see cref="FaultInjection"/> can strike; "at" counts steps, epochs or checkpoint saves (from 1) as noted.</summary>
internal enum FaultPoint
{
    /// <summary>Killed after counting itself into the rendezvous, while the others wait for every rank to arrive.</summary>
    Rendezvous,

    /// <summary>Killed while loading the data: on rank 0 before it tells the others which dataset to load (they wait on a store key).</summary>
    Data,

    /// <summary>On the training data loader's background thread, building the batch of optimizer step "at" (counted over the run).</summary>
    Loader,

    /// <summary>Killed before the forward pass of optimizer step "at".</summary>
    Forward,

    /// <summary>Killed between backward and the gradient all-reduce of step "at": the others wait in the all-reduce.</summary>
    AllReduce,

    /// <summary>Inside collective number "at" of the process group (counted from its first, the same on every rank), once it is issued.</summary>
    Collective,

    /// <summary>Killed before validation's all-reduce at the end of epoch "at".</summary>
    Validation,

    /// <summary>Killed halfway through writing checkpoint number "at" (rank 0).</summary>
    Checkpoint,

    /// <summary>Writing checkpoint number "at" fails with "No space left on device".</summary>
    DiskFull,

    /// <summary>This rank's gradients become NaN at step "at", as if its loss had overflowed.</summary>
    Nan,
}
