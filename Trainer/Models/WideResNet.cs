using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Trainer.Models;

/// <summary>
/// fastai v1's WideResNet (vision/models/wrn.py). <see cref="Wrn22"/> is wrn_22():
/// WideResNet(num_groups=3, N=3, num_classes=10, k=6, drop_p=0): 9,658,458 trainable parameters.
/// On the CPU it runs channels-last (NHWC strides, what PyTorch's tuning guide advises for convolutions): libtorch's
/// oneDNN convolutions then skip their layout reorders, measured 1.25× the images/s at k = 1 and 1.07× at k = 6 on
/// 2 cores. The tensors keep their NCHW shape, so nothing outside the model sees the difference.
/// </summary>
internal sealed class WideResNet : nn.Module<Tensor, Tensor>
{
    private readonly Sequential features;

    public WideResNet(int numGroups, int n, int numClasses, int k = 1, int startNf = 16, int inChannels = 3) : base(nameof(WideResNet))
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "The width k must be 1 or more.");
        var channels = new List<int> { startNf };
        for (var i = 0; i < numGroups; i++) channels.Add(startNf * (1 << i) * k);

        var layers = new List<nn.Module<Tensor, Tensor>> { Conv2d(inChannels, channels[0], 3, 1) };
        for (var i = 0; i < numGroups; i++)
            for (var j = 0; j < n; j++)
                layers.Add(new BasicBlock(j == 0 ? channels[i] : channels[i + 1], channels[i + 1], j == 0 && i > 0 ? 2 : 1));
        layers.Add(nn.BatchNorm2d(channels[numGroups]));
        layers.Add(nn.ReLU(inplace: true));
        layers.Add(nn.AdaptiveAvgPool2d(1));
        layers.Add(nn.Flatten());
        layers.Add(nn.Linear(channels[numGroups], numClasses));
        features = nn.Sequential(layers);
        RegisterComponents();
    }

    /// <summary>wrn_22 with width <paramref name="k"/> (fastai's is k = 6).</summary>
    public static WideResNet Wrn22(int k = 6, int numClasses = 10, bool channelsLastOnCpu = true) =>
        new(numGroups: 3, n: 3, numClasses, k) { ChannelsLastOnCpu = channelsLastOnCpu };

    /// <summary>False runs the CPU in NCHW as well (the tests' reference).</summary>
    internal bool ChannelsLastOnCpu { get; init; } = true;

    public override Tensor forward(Tensor input)
    {
        if (!ChannelsLastOnCpu || input.device_type != DeviceType.CPU || input.dim() != 4)
            return features.forward(input);
        using var scope = NewDisposeScope();
        return features.forward(ToChannelsLast(input)).MoveToOuterDisposeScope();
    }

    /// <summary>The same NCHW tensor with channels-last strides (TorchSharp has no contiguous(memory_format)).</summary>
    internal static Tensor ToChannelsLast(Tensor nchw) => nchw.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    /// <summary>fastai's conv2d: padding ks//2, no bias, kaiming_normal_ weights.</summary>
    internal static Conv2d Conv2d(int ni, int nf, int kernelSize, int stride)
    {
        var conv = nn.Conv2d(ni, nf, kernelSize, stride: stride, padding: kernelSize / 2, bias: false);
        using (no_grad()) nn.init.kaiming_normal_(conv.weight);
        return conv;
    }

    /// <summary>Pre-activation block: x2 = relu(bn(x)); out = conv2(conv1(x2)) · 0.2 + shortcut(x2).</summary>
    private sealed class BasicBlock : nn.Module<Tensor, Tensor>
    {
        private readonly BatchNorm2d bn;
        private readonly Conv2d conv1;
        private readonly Sequential conv2;
        private readonly Conv2d? shortcut;

        public BasicBlock(int ni, int nf, int stride) : base(nameof(BasicBlock))
        {
            bn = nn.BatchNorm2d(ni);
            conv1 = Conv2d(ni, nf, 3, stride);
            conv2 = nn.Sequential(nn.BatchNorm2d(nf), nn.ReLU(inplace: true), Conv2d(nf, nf, 3, 1));
            shortcut = ni != nf ? Conv2d(ni, nf, 1, stride) : null;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            var x2 = nn.functional.relu(bn.forward(x), inplace: true);
            var r = shortcut is null ? x2 : shortcut.forward(x2);
            var main = conv2.forward(conv1.forward(x2)).mul_(0.2);
            return main.add_(r).MoveToOuterDisposeScope();
        }
    }
}
