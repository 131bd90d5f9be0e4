using TorchSharp;
using TorchSharp.Modules;
using Trainer.Models;

namespace Trainer.Tests.Models;

public sealed class WideResNetTests
{
    private static long Trainable(torch.nn.Module model) => model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    [Fact]
    public void Wrn22_has_fastais_parameter_count()
    {
        using var model = WideResNet.Wrn22();
        Assert.Equal(9_658_458, Trainable(model));
    }

    [Fact]
    public void Width_1_has_272282_parameters()
    {
        using var model = WideResNet.Wrn22(k: 1);
        Assert.Equal(272_282, Trainable(model));
    }

    [Fact]
    public void Maps_a_batch_of_cifar_images_to_ten_logits()
    {
        using var model = WideResNet.Wrn22(k: 1);
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();

        var output = model.forward(torch.randn(2, 3, 32, 32));

        Assert.Equal([2L, 10L], output.shape);
    }

    [Fact]
    public void Follows_fastais_layout_channels_and_strides()
    {
        using var model = WideResNet.Wrn22(k: 6);
        var convs = model.named_modules().Where(m => m.module is Conv2d).Select(m => (m.name, conv: (Conv2d)m.module)).ToList();

        // conv1 + 9 blocks × 2 convs + 3 shortcut convs (first block of each group: 16→96, 96→192, 192→384).
        Assert.Equal(1 + 18 + 3, convs.Count);
        var weights = convs.Select(c => c.conv.weight!.shape).ToList();
        Assert.Equal([16L, 3, 3, 3], weights[0]);
        Assert.Contains([96L, 16, 1, 1], weights);
        Assert.Contains([192L, 96, 1, 1], weights);
        Assert.Contains([384L, 192, 1, 1], weights);
        Assert.All(convs, c => Assert.Null(c.conv.bias));
        var linear = model.named_modules().Select(m => m.module).OfType<Linear>().Single();
        Assert.Equal([10L, 384], linear.weight!.shape);
        // Strides 1/2/2: a 32×32 input leaves the last group at 8×8.
        var strided = convs.Where(c => c.conv.weight!.shape[2] == 3 && c.conv.stride[0] == 2).Select(c => c.conv.weight!.shape[0]).ToList();
        Assert.Equal([192L, 384], strided);
    }

    [Fact]
    public void Convolutions_get_kaiming_normal_weights()
    {
        torch.manual_seed(1);
        using var model = WideResNet.Wrn22(k: 6);
        var conv = model.named_modules().Select(m => m.module).OfType<Conv2d>().First(c => c.weight!.shape[0] == 384 && c.weight.shape[1] == 384);
        var fanIn = 384 * 3 * 3;

        var std = conv.weight!.std().item<float>();

        // kaiming_normal_(a=0, mode='fan_in'): std = sqrt(2 / fan_in).
        Assert.InRange(std, 0.98 * Math.Sqrt(2.0 / fanIn), 1.02 * Math.Sqrt(2.0 / fanIn));
        Assert.InRange(conv.weight.mean().item<float>(), -0.001, 0.001);
    }

    [Fact]
    public void Channels_last_keeps_the_shape_and_values_with_nhwc_strides()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(2, 3, 4, 5);

        var nhwc = WideResNet.ToChannelsLast(x);

        Assert.Equal(x.shape, nhwc.shape);
        Assert.Equal([3L * 4 * 5, 1, 5 * 3, 3], nhwc.stride());
        Assert.True(x.allclose(nhwc, rtol: 0, atol: 0));
    }

    [Fact]
    public void Channels_last_training_step_matches_nchw()
    {
        using var scope = torch.NewDisposeScope();
        using var nchw = SeededWeights.Apply(WideResNet.Wrn22(k: 1, channelsLastOnCpu: false), seed: 3);
        using var nhwc = SeededWeights.Apply(WideResNet.Wrn22(k: 1), seed: 3);
        using var generator = new torch.Generator(4);
        var x = torch.randn([4, 3, 32, 32], generator: generator);
        var y = torch.tensor(new long[] { 0, 3, 7, 9 });

        var (referenceLogits, referenceGrads) = Step(nchw);
        var (logits, grads) = Step(nhwc);

        Assert.True(logits.allclose(referenceLogits, rtol: 1e-4, atol: 1e-5), "the logits differ");
        Assert.All(grads.Zip(referenceGrads), g => Assert.True(g.First.allclose(g.Second, rtol: 1e-3, atol: 1e-5), "a gradient differs"));

        (torch.Tensor, torch.Tensor[]) Step(WideResNet model)
        {
            model.train();
            var output = model.forward(x);
            torch.nn.functional.cross_entropy(output, y).backward();
            return (output.detach(), model.parameters().Select(p => p.grad!.contiguous()).ToArray());
        }
    }
}
