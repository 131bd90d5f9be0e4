using System.Runtime.InteropServices;

namespace Trainer.Distributed.Nccl;

/// <summary>nccl.h's ncclUniqueId: 128 opaque bytes rank 0 creates and every rank passes (by value) to ncclCommInitRank.</summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
internal unsafe struct NcclUniqueId
{
    public const int Size = 128;

    public fixed byte Internal[Size];

    public readonly byte[] ToArray()
    {
        var bytes = new byte[Size];
        fixed (byte* source = Internal)
            new ReadOnlySpan<byte>(source, Size).CopyTo(bytes);
        return bytes;
    }

    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size)
            throw new DistributedException($"The NCCL unique id in the store has {bytes.Length} bytes, expected {Size}; is another program using the same key prefix?");
        var id = new NcclUniqueId();
        bytes.CopyTo(new Span<byte>(id.Internal, Size));
        return id;
    }
}
