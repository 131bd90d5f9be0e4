namespace Trainer.Distributed.Store;

/// <summary>The store understood a request but refused it (for example, adding to a key that holds no counter).</summary>
public class StoreException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>The handshake failed: wrong or missing TRAINER_RUN_SECRET on one side. Retrying cannot help.</summary>
public sealed class StoreAuthenticationException(string message) : StoreException(message);

/// <summary>
/// The connection to the store broke (its process died, or the network): every pending and later call on that
/// client fails with it. The store lives on rank 0 (or rank 0's elastic agent), so this usually means rank 0 is gone.
/// </summary>
public sealed class StoreConnectionLostException(string message, Exception innerException) : IOException(message, innerException);
