using static TorchSharp.torch;

namespace Trainer.Training;

/// <summary>
/// The seams through which a data-parallel wrapper (DistributedDataParallel) plugs into the
/// <see cref="Learner"/> without changing it. <see cref="SingleProcess"/> is the one-rank default.
/// </summary>
internal interface IDataParallel
{
    int Rank { get; }

    int WorldSize { get; }

    /// <summary>Only the main rank writes checkpoints and summary.json and shows progress.</summary>
    bool IsMain => Rank == 0;

    /// <summary>Once before training (after any checkpoint is loaded): e.g. broadcast rank 0's parameters and buffers.</summary>
    void OnFitStart(nn.Module model) { }

    /// <summary>Before each training forward pass: e.g. broadcast rank 0's BatchNorm buffers.</summary>
    void BeforeForward(nn.Module model) { }

    /// <summary>After loss.backward(), before the optimizer step: e.g. all-reduce (average) the gradients.</summary>
    void AfterBackward(nn.Module model) { }

    /// <summary>After each epoch's training and validation: e.g. check that every replica holds the same parameters.</summary>
    void OnEpochEnd(nn.Module model, int epoch) { }

    /// <summary>Time spent in the gradient all-reduce so far (telemetry); zero without one.</summary>
    TimeSpan AllReduceTime => TimeSpan.Zero;

    /// <summary>Gradient bytes each step all-reduces (telemetry); zero without an all-reduce.</summary>
    long GradientBytes => 0;

    /// <summary>Replaces each value by its sum over all ranks (all-reduce SUM); metrics divide afterwards.</summary>
    void AllReduceSum(Span<double> values) { }
}
