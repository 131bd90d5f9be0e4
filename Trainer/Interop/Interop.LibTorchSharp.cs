using System.Runtime.InteropServices;

namespace Trainer;

internal static partial class Interop
{
    /// <summary>TorchSharp's own native glue, for what its managed API only offers with a copy or an allocation (Distributed/TensorMemory.cs).</summary>
    internal static partial class LibTorchSharp
    {
        private const string Library = "LibTorchSharp";

        /// <summary>at::Tensor::data_ptr(): the storage pointer plus the storage offset.</summary>
        [LibraryImport(Library, EntryPoint = "THSTensor_data")]
        public static partial IntPtr DataPointer(IntPtr tensor);

        /// <summary>A new handle to the tensor's .grad (release it), or zero when it has none.</summary>
        [LibraryImport(Library, EntryPoint = "THSTensor_grad")]
        public static partial IntPtr Gradient(IntPtr tensor);

        [LibraryImport(Library, EntryPoint = "THSTensor_dispose")]
        public static partial void Release(IntPtr tensor);
    }
}
