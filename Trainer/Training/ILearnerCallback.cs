namespace Trainer.Training;

/// <summary>
/// fastai-style callbacks: the learner calls them at each point of a fit, on every rank (check
/// <see cref="Learner.IsMain"/> for rank-0-only work). Implement only what you need.
/// </summary>
internal interface ILearnerCallback
{
    void OnFitStart(FitStart fit) { }

    void OnEpochStart(int epoch) { }

    void OnBatchEnd(BatchEnd batch) { }

    void OnValidationEnd(ValidationResult validation) { }

    void OnEpochEnd(EpochResult epoch) { }

    void OnFitEnd(FitResult fit) { }
}
