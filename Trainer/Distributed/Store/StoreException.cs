namespace Trainer.Distributed.Store;

/// <summary>The store understood a request but refused it (for example, adding to a key that holds no counter).</summary>
public class StoreException(string message, Exception? innerException = null) : Exception(message, innerException);

/// <summary>The handshake failed: wrong or missing TRAINER_RUN_SECRET on one side. Retrying cannot help.</summary>
public sealed class StoreAuthenticationException(string message) : StoreException(message);
