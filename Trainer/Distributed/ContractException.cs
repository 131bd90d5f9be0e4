namespace Trainer.Distributed;

/// <summary>
/// The launch configuration is wrong (a bad or missing environment variable, or ranks that disagree about the
/// world). The message is one line naming the value and the fix; commands exit with code 2 on it.
/// </summary>
public sealed class ContractException(string message) : Exception(message);
