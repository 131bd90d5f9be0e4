using Microsoft.Extensions.DependencyInjection;

namespace AppHost;

public static class TrainingRunResourceExtensions
{
    // The trainer's RunControlCallback reads these (Trainer/Runtime/LaunchContract.cs).
    public const string ControlFolder = LaunchContract.ControlFolder;
    public const string SaveCheckpointRequest = LaunchContract.SaveCheckpointRequest;
    public const string StopAfterEpochRequest = LaunchContract.StopAfterEpochRequest;

    /// <summary>
    /// Adds the `run` resource with "Save checkpoint now" and "Stop after this epoch". A command writes a request file
    /// into the run's output folder, which the trainers poll between steps: that works whether or not the training
    /// Dashboard is up, needs no listener in the trainers, and `touch runs/&lt;id&gt;/control/stop-after-epoch` does the
    /// same by hand. The trainers agree on the stop among themselves, so every rank ends after the same epoch.
    /// </summary>
    public static IResourceBuilder<TrainingRunResource> AddTrainingRun(this IDistributedApplicationBuilder builder, TrainerLaunch launch,
        IResourceBuilder<ProjectResource> dashboard)
    {
        var run = builder.AddResource(new TrainingRunResource("run", launch.RunId, launch.Output))
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "Training run",
                CreationTimeStamp = DateTime.UtcNow,
                State = new ResourceStateSnapshot("Starting", KnownResourceStateStyles.Info),
                Properties =
                [
                    new("trainer.run_id", launch.RunId),
                    new("trainer.world_size", launch.LocalWorldSize),
                    new("trainer.output", launch.Output),
                    new(CustomResourceKnownProperties.Source, string.Join(' ', launch.TrainerArgs)),
                ],
            })
            .ExcludeFromManifest()
            .WithCommand("save-checkpoint", "Save checkpoint now", _ => Request(launch, SaveCheckpointRequest,
                    "rank 0 saves checkpoint-step<N>.ckpt after its current step"),
                new CommandOptions
                {
                    Description = "Rank 0 saves a snapshot (model, optimizer, step) after its current step into the run's output folder. " +
                                  "--resume continues from the last epoch's checkpoint.ckpt.",
                    IconName = "Save",
                    UpdateState = context => IsActive(context.ResourceSnapshot) ? ResourceCommandState.Enabled : ResourceCommandState.Disabled,
                })
            .WithCommand("stop-after-epoch", "Stop after this epoch", _ => Request(launch, StopAfterEpochRequest,
                    "every rank stops once this epoch is trained, validated and checkpointed"),
                new CommandOptions
                {
                    Description = "All ranks finish the current epoch (validation and checkpoint included) and exit; continue later with --resume.",
                    ConfirmationMessage = "Stop the run after the current epoch?",
                    IconName = "RecordStop",
                    UpdateState = context => IsActive(context.ResourceSnapshot) ? ResourceCommandState.Enabled : ResourceCommandState.Disabled,
                });
        builder.Services.AddHostedService(services => new RunStatePublisher(run.Resource, dashboard.GetEndpoint("http"),
            services.GetRequiredService<ResourceNotificationService>()));
        return run;
    }

    private static bool IsActive(CustomResourceSnapshot snapshot) =>
        snapshot.State?.Text is { } state && (state.StartsWith("Epoch", StringComparison.Ordinal) || state == "Starting");

    private static Task<ExecuteCommandResult> Request(TrainerLaunch launch, string request, string effect)
    {
        try
        {
            var folder = Path.Combine(launch.Output, ControlFolder);
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, request), DateTimeOffset.UtcNow.ToString("O"));
            return Task.FromResult(CommandResults.Success($"Requested: {effect}."));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(CommandResults.Failure($"Could not write the request into {launch.Output}: {e.Message}"));
        }
    }
}
