namespace Dashboard.Runs;

/// <summary>A run in the history list and the comparison: its recipe and how it went.</summary>
public sealed record RunSummary(string RunId, string Status, DateTimeOffset StartedAt, DateTimeOffset? EndedAt, double DurationSeconds,
    int WorldSize, int RanksReporting, int EpochsDone, int? Epochs, double? Accuracy, double? ValidLoss, double ImagesPerSecond,
    long Dropped, IReadOnlyDictionary<string, string> Config);

/// <summary>Where the run stands: for the run page's header and the app host's resource state.</summary>
public sealed record RunProgress(string RunId, string Status, int Epoch, int Epochs, int Step, int TotalSteps, double Fraction, double? EtaSeconds, double? Accuracy, string Text);

/// <summary>Everything the run page draws.</summary>
public sealed record RunDetail(RunSummary Summary, RunProgress Progress, IReadOnlyList<RankView> Ranks);

/// <summary>One rank: what it runs on, its state, and its curves.</summary>
public sealed record RankView(int Rank, int LocalRank, string Status, HardwareInfo? Hardware, FitInfo? Fit, RankEnd? End, long Dropped,
    DateTimeOffset LastSeen, long? MemoryBytes, double? AllReduceShare, double? ImagesPerSecond, StepSeries Steps, IReadOnlyList<EpochPoint> Epochs);

/// <summary>Per-step curves as columns (compact JSON), thinned to at most a few thousand points.</summary>
public sealed record StepSeries(int Count, IReadOnlyList<int> Step, IReadOnlyList<double> Loss, IReadOnlyList<double> SmoothLoss,
    IReadOnlyList<double> LearningRate, IReadOnlyList<double> Momentum, IReadOnlyList<double> ImagesPerSecond,
    IReadOnlyList<double> StepSeconds, IReadOnlyList<double> DataWaitSeconds, IReadOnlyList<double> AllReduceSeconds);
