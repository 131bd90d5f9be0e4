using System.Runtime.InteropServices;
using TorchSharp;

namespace Trainer.Distributed;

/// <summary>
/// Raw access to a tensor's memory without copying: libtorch's data_ptr() (storage pointer plus storage offset,
/// on the CPU or the GPU), which TorchSharp only exposes as a CPU span limited to 2 GB.
/// </summary>
internal static unsafe class TensorMemory
{
    /// <summary>
    /// Address of <paramref name="parameter"/>'s .grad, or null when it has none: what <c>parameter.grad</c> tells,
    /// without allocating the managed Tensor that getter returns on every call.
    /// </summary>
    public static byte* GradientAddress(torch.Tensor parameter)
    {
        var gradient = Interop.LibTorchSharp.Gradient(parameter.Handle);
        if (gradient == IntPtr.Zero)
            return null;
        try
        {
            return (byte*)Interop.LibTorchSharp.DataPointer(gradient);
        }
        finally
        {
            Interop.LibTorchSharp.Release(gradient);
        }
    }

    /// <summary>Address of the tensor's first element; the tensor must be contiguous to read it as one block.</summary>
    public static byte* Address(torch.Tensor tensor)
    {
        var pointer = Interop.LibTorchSharp.DataPointer(tensor.Handle);
        if (pointer == IntPtr.Zero && tensor.numel() > 0)
            throw new InvalidOperationException("libtorch returned no data pointer for the tensor.");
        return (byte*)pointer;
    }

    /// <summary>Bytes per element, or 0 for a dtype no backend transports.</summary>
    public static int ElementSize(torch.ScalarType dataType) => dataType switch
    {
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 => 2,
        torch.ScalarType.Byte or torch.ScalarType.Int8 => 1,
        _ => 0,
    };

    public static string Describe(torch.Tensor tensor) =>
        $"{tensor.dtype} tensor of shape [{string.Join(", ", tensor.shape)}] on {tensor.device}";
}
