namespace Trainer.Training;

/// <summary>fastai's per-epoch table: epoch, train_loss, valid_loss, accuracy, time.</summary>
internal static class EpochTable
{
    public static string Header => $"{"epoch",-6}{"train_loss",-12}{"valid_loss",-12}{"accuracy",-10}{"img/s",-8}time";

    public static string Row(EpochResult e) =>
        $"{e.Epoch,-6}{e.TrainLoss,-12:F6}{e.ValidLoss,-12:F6}{e.Accuracy,-10:F6}{e.ImagesPerSecond,-8:F0}{e.Duration:mm\\:ss}";
}
