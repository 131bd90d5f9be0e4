using System.Text.Json;

namespace Bench;

/// <summary>One JSON object per line on stdout, flushed at once: bench/run reads them as they come.</summary>
internal static class Json
{
    public static void WriteLine(object value)
    {
        Console.Out.WriteLine(JsonSerializer.Serialize(value));
        Console.Out.Flush();
    }
}
