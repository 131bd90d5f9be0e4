using TorchSharp;
using static TorchSharp.torch;

namespace Trainer.Training;

/// <summary>
/// Stops a diverging run before a NaN or an infinity reaches the weights, on every rank at the same step. A rank
/// whose own loss is not finite poisons its gradients before they are averaged, so the averaged gradients, which
/// are bit-identical on every rank, are not finite anywhere; every rank then checks those same gradients and
/// reaches the same verdict without an extra collective. One device-to-host read per step.
/// </summary>
internal static class NonFiniteCheck
{
    /// <summary>Before the gradient all-reduce: turns a non-finite <paramref name="loss"/> into NaN gradients (no host sync).</summary>
    public static void PoisonIfNotFinite(nn.Module model, Tensor loss)
    {
        var first = model.parameters().FirstOrDefault(p => p.grad is not null);
        if (first is null) return;
        using var grad = first.grad!;
        using (no_grad())
        using (var zeroOrNaN = loss.detach().mul(0))
            grad.add_(zeroOrNaN); // x + 0 == x; x + NaN == NaN
    }

    /// <summary>
    /// After the all-reduce: throws <see cref="TrainingDivergedException"/> when any gradient element is NaN or infinite.
    /// A NaN or an infinity anywhere makes the (float64) sum of all gradients non-finite: one reduction per parameter
    /// and one read, instead of an element-wise test per parameter.
    /// </summary>
    public static void ThrowIfDiverged(nn.Module model, int step, double loss, int rank)
    {
        double total;
        using (no_grad())
        using (NewDisposeScope())
        {
            var sums = model.parameters().Select(p => p.grad).OfType<Tensor>().Select(g => g.sum(ScalarType.Float64)).ToArray();
            if (sums.Length == 0) return;
            total = torch.stack(sums).sum().item<double>();
        }
        if (!double.IsFinite(total))
            throw new TrainingDivergedException(step,
                $"training diverged at step {step}: the averaged gradients are {(double.IsNaN(total) ? "NaN" : "infinite")} (rank {rank}'s own loss: {loss:G6}); every rank stops here, before the weights are touched");
    }
}

/// <summary>The loss or the averaged gradients became NaN or infinite at <paramref name="Step"/>.</summary>
internal sealed class TrainingDivergedException(int step, string message) : Exception(message)
{
    public int Step { get; } = step;
}
