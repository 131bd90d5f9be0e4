namespace AppHost;

/// <summary>
/// The run as one row in the Aspire dashboard, parent of its trainers: its state is the run's progress ("Epoch 3 of 10
/// ETA 4m 10s", then "Finished"; the trainer.progress property has the full line), it links to the run in the training
/// Dashboard, and it carries the commands that act on the whole run.
/// </summary>
public sealed class TrainingRunResource(string name, string runId, string output) : Resource(name)
{
    public string RunId { get; } = runId;

    /// <summary>The trainers' --output folder; requests go to its control/ subfolder.</summary>
    public string Output { get; } = output;
}
