using Trainer.Training;
using static TorchSharp.torch;

namespace Trainer.Faults;

/// <summary>
/// Wraps the learner's data-parallel seams to strike at the armed training faults: before a forward pass, between
/// backward and the gradient all-reduce, before validation's all-reduce, or by turning this rank's gradients NaN.
/// </summary>
internal sealed class FaultInjectingParallel(IDataParallel inner, Func<int> stepsDone) : IDataParallel, IDisposable
{
    private int _validations;

    public int Rank => inner.Rank;

    public int WorldSize => inner.WorldSize;

    public TimeSpan AllReduceTime => inner.AllReduceTime;

    public long GradientBytes => inner.GradientBytes;

    public void OnFitStart(nn.Module model) => inner.OnFitStart(model);

    public void BeforeForward(nn.Module model)
    {
        FaultInjection.StrikeIfArmed(FaultPoint.Forward, stepsDone() + 1);
        inner.BeforeForward(model);
    }

    public void AfterBackward(nn.Module model)
    {
        var step = stepsDone() + 1;
        FaultInjection.StrikeIfArmed(FaultPoint.AllReduce, step);
        if (FaultInjection.Armed(FaultPoint.Nan, step))
        {
            Console.Error.WriteLine($"fault injection ({FaultInjection.Variable}): rank {Rank}'s gradients turn NaN at step {step}");
            using var grad = model.parameters().First(p => p.grad is not null).grad!;
            using (no_grad()) grad.fill_(double.NaN);
        }
        inner.AfterBackward(model);
    }

    public void OnEpochEnd(nn.Module model, int epoch) => inner.OnEpochEnd(model, epoch);

    public void AllReduceSum(Span<double> values)
    {
        FaultInjection.StrikeIfArmed(FaultPoint.Validation, ++_validations);
        inner.AllReduceSum(values);
    }

    public void Dispose() => (inner as IDisposable)?.Dispose();
}
