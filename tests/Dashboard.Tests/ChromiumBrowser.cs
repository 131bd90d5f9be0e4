using System.Diagnostics;

namespace Dashboard.Tests;

/// <summary>
/// The chromium the browser test drives: CHROMIUM_PATH, else the first of Debian's, Ubuntu's and Google's usual
/// paths. On a fresh Debian or Ubuntu machine that has none, a root test run installs Debian's chromium with apt-get
/// (what .ci/run does), so `dotnet test` needs only the .NET SDK there; elsewhere the failure says what to install.
/// </summary>
internal static class ChromiumBrowser
{
    public const string Variable = "CHROMIUM_PATH";

    private static readonly string[] Candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable", "/snap/bin/chromium"];
    private static readonly Lazy<(string? Path, string Problem)> Found = new(Locate);

    /// <summary>The executable, or a failed assertion naming what to install.</summary>
    public static string Path()
    {
        var (path, problem) = Found.Value;
        Assert.True(path is not null, problem);
        return path!;
    }

    private static (string? Path, string Problem) Locate()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } given)
            return File.Exists(given) ? (given, "") : (null, $"{Variable}={given}: no such file; point it at a chromium or Chrome executable, or unset it.");
        if (Candidates.FirstOrDefault(File.Exists) is { } existing)
            return (existing, "");
        const string advice = "install Debian's chromium (sudo apt-get install -y chromium) or set CHROMIUM_PATH to a chromium or Chrome executable";
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root" || !File.Exists("/usr/bin/apt-get"))
            return (null, $"no chromium found ({string.Join(", ", Candidates)}): {advice}.");
        var log = Run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium");
        return Candidates.FirstOrDefault(File.Exists) is { } installed
            ? (installed, "")
            : (null, $"no chromium found and `apt-get install chromium` did not provide one: {advice}. apt-get said: {log}");
    }

    private static string Run(string script)
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
            process.Kill(entireProcessTree: true);
        var text = (stdout.Result + stderr.Result).Trim();
        return text.Length > 2000 ? text[^2000..] : text;
    }
}
