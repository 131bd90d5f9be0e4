using Spectre.Console;

namespace Trainer.Training;

/// <summary>A live progress bar (ETA, smoothed loss, images/s) for terminals, with fastai's table row per epoch above it.</summary>
internal sealed class ProgressBarCallback(ProgressContext context) : ILearnerCallback
{
    private ProgressTask? _task;
    private int _epochs;
    private int _startStep;

    /// <summary>Runs <paramref name="fit"/> with a progress bar attached to <paramref name="learner"/>.</summary>
    public static T Run<T>(Learner learner, Func<T> fit) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var callback = new ProgressBarCallback(context);
                learner.Callbacks.Add(callback);
                try
                {
                    return fit();
                }
                finally
                {
                    learner.Callbacks.Remove(callback);
                }
            });

    public void OnFitStart(FitStart fit)
    {
        _epochs = fit.Epochs;
        _startStep = fit.StartEpoch * fit.BatchesPerEpoch;
        _task = context.AddTask($"epoch {fit.StartEpoch + 1}/{fit.Epochs}", maxValue: Math.Max(1, fit.TotalSteps - _startStep));
        AnsiConsole.WriteLine(EpochTable.Header);
    }

    public void OnBatchEnd(BatchEnd b)
    {
        if (_task is null) return;
        _task.Value = b.Step - _startStep;
        _task.Description = Markup.Escape($"epoch {b.Epoch + 1}/{_epochs}  loss {b.SmoothLoss:F4}  {b.ImagesPerSecond:F0} img/s");
    }

    public void OnEpochEnd(EpochResult epoch) => AnsiConsole.WriteLine(EpochTable.Row(epoch));

    public void OnFitEnd(FitResult fit) => _task?.StopTask();
}
