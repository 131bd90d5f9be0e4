using TorchSharp;

namespace Trainer.Tests.Training;

/// <summary>A test that needs a GPU that TorchSharp can use (the CUDA libtorch, -p:TorchBackend=cuda), but not NCCL; skipped, with the reason, elsewhere.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        bool available;
        try
        {
            available = torch.cuda.is_available();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or NotSupportedException)
        {
            available = false;
        }
        if (!available)
            Skip = "CUDA is not available to TorchSharp: no NVIDIA GPU or driver, or the tests were built with the CPU libtorch (build them with -p:TorchBackend=cuda).";
    }
}
