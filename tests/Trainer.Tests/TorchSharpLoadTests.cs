using static TorchSharp.torch;

namespace Trainer.Tests;

/// <summary>TorchSharp loads on this host (Debian 12's libstdc++ lacks GLIBCXX_3.4.32: see build/TorchSharpGlibcxxFix.targets).</summary>
public class TorchSharpLoadTests
{
    [Fact]
    public void MultipliesTwoMatrices()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var b = tensor(new float[] { 7, 8, 9, 10, 11, 12 }, 3, 2);
        using var product = matmul(a, b);
        Assert.Equal(new float[] { 58, 64, 139, 154 }, product.data<float>().ToArray());
    }

    [Fact]
    public void OutputCopyOfLibTorchSharpNoLongerHardRequiresGlibcxx3432()
    {
        var library = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(library), $"{library} is missing from the test output");
        var hostHasIt = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6" }
            .Where(File.Exists).Take(1)
            .Any(path => File.ReadAllText(path, System.Text.Encoding.Latin1).Contains("GLIBCXX_3.4.32\0"));
        if (hostHasIt) return; // nothing needed patching on this host

        var text = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(library));
        Assert.Contains("GLIBCXX_3.4.32", text);
        var readelf = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("readelf", ["-V", library])
        { RedirectStandardOutput = true })!;
        var output = readelf.StandardOutput.ReadToEnd();
        readelf.WaitForExit();
        Assert.Matches(@"Name: GLIBCXX_3\.4\.32\s+Flags: WEAK", output);
    }
}
