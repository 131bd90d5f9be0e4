using System.Text.Json;

namespace AppHost.Tests;

/// <summary>
/// The deployment manifest that azd reads (`dotnet run --project AppHost -- --publisher manifest --output-path …`):
/// every trainer carries its rank and points at trainer-0's master endpoint, which has a fixed port.
/// </summary>
public class ManifestTests
{
    [Fact]
    public async Task Each_trainer_carries_its_rank_and_the_master_binding_of_trainer_0()
    {
        var dir = Directory.CreateTempSubdirectory("apphost-manifest-");
        try
        {
            var path = Path.Combine(dir.FullName, "aspire-manifest.json");
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.AppHost>(
                ["--publisher", "manifest", "--output-path", path, "--Trainers", "3", "--RunId", "manifest-test"], timeout.Token);
            await using (var app = await builder.BuildAsync(timeout.Token))
                await app.RunAsync(timeout.Token);

            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(path, timeout.Token));
            var resources = manifest.RootElement.GetProperty("resources");
            for (var rank = 0; rank < 3; rank++)
            {
                var trainer = resources.GetProperty($"trainer-{rank}");
                Assert.Equal("project.v0", trainer.GetProperty("type").GetString());
                var env = trainer.GetProperty("env");
                Assert.Equal($"{rank}", env.GetProperty("RANK").GetString());
                // Every trainer is a container of its own: a node of one rank on its own GPU.
                Assert.Equal("0", env.GetProperty("LOCAL_RANK").GetString());
                Assert.Equal("1", env.GetProperty("LOCAL_WORLD_SIZE").GetString());
                Assert.Equal($"{rank}", env.GetProperty("GROUP_RANK").GetString());
                Assert.Equal("3", env.GetProperty("WORLD_SIZE").GetString());
                Assert.Equal("manifest-test", env.GetProperty("TORCHELASTIC_RUN_ID").GetString());
                Assert.Equal("{run-secret.value}", env.GetProperty("TRAINER_RUN_SECRET").GetString());
                Assert.Equal("{trainer-0.bindings.master.port}", env.GetProperty("MASTER_PORT").GetString());
                Assert.Equal("{trainer-0.bindings.master.host}", env.GetProperty("MASTER_ADDR").GetString());
                Assert.Equal(rank == 0, trainer.TryGetProperty("bindings", out _));
                // A container has its own cores and paths: no thread count or path of the publishing machine.
                Assert.False(env.TryGetProperty("TRAINER_THREADS", out _));
                Assert.Contains("runs/manifest-test", trainer.GetProperty("args").EnumerateArray().Select(a => a.GetString()));
            }
            var master = resources.GetProperty("trainer-0").GetProperty("bindings").GetProperty("master");
            Assert.Equal("tcp", master.GetProperty("transport").GetString());
            Assert.Equal(29500, master.GetProperty("targetPort").GetInt32());
            Assert.False(resources.TryGetProperty("trainer-3", out _));
            Assert.True(resources.GetProperty("run-secret").GetProperty("inputs").GetProperty("value").GetProperty("secret").GetBoolean());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
