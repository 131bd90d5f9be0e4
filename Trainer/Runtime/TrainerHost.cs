using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Trainer.Runtime;

/// <summary>
/// The generic host every command runs in: logging and telemetry from the service defaults, logs on stderr so that
/// stdout carries only the command's own output. Config files are not watched: one inotify instance per rank
/// process adds up against the per-user limit.
/// </summary>
internal static class TrainerHost
{
    public static IHost Create()
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection([new("hostBuilder:reloadConfigOnChange", "false")]);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Configuration = configuration });
        builder.AddServiceDefaults();
        Telemetry.DashboardReporter.AddClient(builder);
        builder.Logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(lifetime => lifetime.SuppressStatusMessages = true);
        return builder.Build();
    }

    public static ILogger Logger(this IHost host, string category) =>
        host.Services.GetRequiredService<ILoggerFactory>().CreateLogger(category);
}
