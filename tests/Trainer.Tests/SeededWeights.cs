using TorchSharp;

namespace Trainer.Tests;

/// <summary>
/// Weights drawn from a generator of their own. torch.manual_seed is process-wide and xunit runs test classes in
/// parallel: another test building a model or calling randn between a seed and a constructor changes the weights.
/// </summary>
internal static class SeededWeights
{
    /// <summary>Kaiming-normal (fan in) for every weight of two or more dimensions, small uniform values for biases; constant vectors (BatchNorm's) stay.</summary>
    public static T Apply<T>(T module, int seed) where T : torch.nn.Module
    {
        using var generator = new torch.Generator((ulong)seed);
        using var _ = torch.no_grad();
        foreach (var parameter in module.parameters())
        {
            if (parameter.dim() >= 2)
                parameter.normal_(0, Math.Sqrt(2.0 / (parameter.numel() / parameter.shape[0])), generator);
            else
            {
                using var low = parameter.min();
                using var high = parameter.max();
                if (low.item<float>() != high.item<float>())
                    parameter.uniform_(-0.1, 0.1, generator);
            }
        }
        return module;
    }
}
