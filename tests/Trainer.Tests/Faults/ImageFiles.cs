using StbImageWriteSharp;

namespace Trainer.Tests.Faults;

/// <summary>Small PNG files for image-folder datasets.</summary>
internal static class ImageFiles
{
    public static void WritePng(string path, int width, int height, int seed)
    {
        var rgb = new byte[width * height * 3];
        for (var i = 0; i < rgb.Length; i++) rgb[i] = (byte)(seed * 31 + i * 7);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.Create(path);
        new ImageWriter().WritePng(rgb, width, height, ColorComponents.RedGreenBlue, file);
    }
}
