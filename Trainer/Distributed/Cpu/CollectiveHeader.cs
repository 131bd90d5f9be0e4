using System.Runtime.InteropServices;
using TorchSharp;

namespace Trainer.Distributed.Cpu;

/// <summary>
/// Sent once per collective to the right neighbour ahead of the data, so that ranks calling different collectives
/// (a different op, dtype, size, root or order) fail at once with both calls named instead of exchanging garbage.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = Size)]
internal struct CollectiveHeader
{
    public const int Size = 32;
    private const uint ExpectedMagic = 0x4C_4C_4F_43; // "COLL"

    public uint Magic;
    public CollectiveKind Kind;
    public sbyte DataType;
    public byte ReduceOp;
    public byte Reserved;
    public int Root;
    public long Sequence;
    public long ElementCount;
    public long Reserved2;

    public static CollectiveHeader Create(CollectiveKind kind, torch.ScalarType dataType, ReduceOp op, int root, long sequence, long elementCount) => new()
    {
        Magic = ExpectedMagic,
        Kind = kind,
        DataType = (sbyte)dataType,
        ReduceOp = (byte)op,
        Root = root,
        Sequence = sequence,
        ElementCount = elementCount,
    };

    public readonly bool Matches(in CollectiveHeader other) =>
        Magic == other.Magic && Kind == other.Kind && DataType == other.DataType && ReduceOp == other.ReduceOp &&
        Root == other.Root && Sequence == other.Sequence && ElementCount == other.ElementCount;

    public readonly string Describe()
    {
        if (Magic != ExpectedMagic)
            return $"an unrecognised message (magic 0x{Magic:X8})";
        var what = Kind switch
        {
            CollectiveKind.AllReduce => $"AllReduce({(Distributed.ReduceOp)ReduceOp}) of {ElementCount} {(torch.ScalarType)DataType} elements",
            CollectiveKind.Broadcast => $"Broadcast(root {Root}) of {ElementCount} {(torch.ScalarType)DataType} elements",
            CollectiveKind.AllGather => $"AllGather of {ElementCount} {(torch.ScalarType)DataType} elements per rank",
            CollectiveKind.Barrier => "Barrier",
            _ => $"collective kind {(byte)Kind}",
        };
        return $"collective #{Sequence}: {what}";
    }
}
