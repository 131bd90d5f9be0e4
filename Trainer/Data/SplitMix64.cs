namespace Trainer.Data;

/// <summary>
/// A tiny, fast, seedable random generator whose whole state is one 64-bit value. Augmentation derives one
/// per (seed, epoch, batch), so the images of a batch do not depend on which thread built it or when.
/// </summary>
internal struct SplitMix64(ulong state)
{
    private ulong _state = state;

    public static SplitMix64 For(long seed, long epoch, long batch)
    {
        var mixer = new SplitMix64((ulong)seed);
        var a = mixer.NextUInt64() ^ (ulong)epoch;
        mixer = new SplitMix64(a);
        var b = mixer.NextUInt64() ^ (ulong)batch;
        return new SplitMix64(new SplitMix64(b).NextUInt64());
    }

    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in 0..<paramref name="bound"/>-1 (Lemire's multiply-shift; the bias is below 2^-32 for small bounds).</summary>
    public int NextInt(int bound) => (int)(((NextUInt64() >> 32) * (ulong)bound) >> 32);
}
