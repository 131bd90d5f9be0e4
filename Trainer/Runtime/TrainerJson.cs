using System.Text.Json;
using System.Text.Json.Serialization;
using Trainer.Distributed;
using Trainer.Training;

namespace Trainer.Runtime;

/// <summary>
/// Source-generated JSON for everything the trainer writes or reads with default options: it works in a trimmed
/// publish, where reflection-based System.Text.Json is off. The recipe's values are boxed int, double, string or null.
/// A loss can be NaN or infinite: such numbers are written as "NaN", "Infinity".
/// </summary>
[JsonSourceGenerationOptions(NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(CheckpointInfo))]
[JsonSerializable(typeof(Rendezvous.RankInfo))]
[JsonSerializable(typeof(Elastic.RoundOutcome))]
[JsonSerializable(typeof(Watchdog.FlightRecord))]
[JsonSerializable(typeof(List<Watchdog.FlightRecord>))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(string))]
internal sealed partial class TrainerJson : JsonSerializerContext;

/// <summary>summary.json: snake_case names, indented, NaN and infinities written as such (a diverged loss is NaN).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(TrainingSummary))]
internal sealed partial class SummaryJson : JsonSerializerContext;
