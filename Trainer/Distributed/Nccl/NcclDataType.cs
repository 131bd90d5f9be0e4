namespace Trainer.Distributed.Nccl;

/// <summary>nccl.h's ncclDataType_t (values from NVIDIA/nccl src/nccl.h.in).</summary>
internal enum NcclDataType
{
    Int8 = 0,
    Uint8 = 1,
    Int32 = 2,
    Uint32 = 3,
    Int64 = 4,
    Uint64 = 5,
    Float16 = 6,
    Float32 = 7,
    Float64 = 8,
    Bfloat16 = 9,
}
