using System.Runtime.InteropServices;

namespace Trainer.Runtime;

/// <summary>The few POSIX calls .NET has no API for: signals, leaving at once, fsync of a folder, and why a library does not load.</summary>
internal static class Posix
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigStop = 19;

    private const int ReadOnly = 0; // O_RDONLY opens a folder too (O_DIRECTORY's value differs between architectures)

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; false when it is gone.</summary>
    public static bool Signal(int pid, int signal) => OperatingSystem.IsWindows() ? false : Interop.Libc.Kill(pid, signal) == 0;

    /// <summary>
    /// Stops this whole process (SIGSTOP) before the calling thread runs another instruction: raise() aims the signal at
    /// this thread, where kill() on our own pid may let the caller run on until another thread takes the stop.
    /// </summary>
    public static void StopThisProcess()
    {
        if (!OperatingSystem.IsWindows())
            Interop.Libc.Raise(SigStop);
    }

    /// <summary>Ends this process now, running no finalizers or exit handlers (which could wait on a peer that is gone).</summary>
    public static void ExitNow(int exitCode)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        if (!OperatingSystem.IsWindows())
            Interop.Libc.Exit(exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>Makes a rename inside <paramref name="folder"/> durable: without it a power cut may undo the rename.</summary>
    public static void FsyncDirectory(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        var fd = Interop.Libc.Open(folder, ReadOnly);
        if (fd < 0) return; // best effort: the data itself was fsynced
        try
        {
            Interop.Libc.Fsync(fd);
        }
        finally
        {
            Interop.Libc.Close(fd);
        }
    }

    /// <summary>dlopen with RTLD_NOW: null when <paramref name="library"/> and everything it needs load, else the loader's reason.</summary>
    public static string? LoadProblem(string library)
    {
        Interop.Libc.DlError(); // binds dlerror now: binding it lazily after the failure would clear the message
        var handle = Interop.Libc.DlOpen(library, Interop.Libc.RtldNow);
        if (handle != IntPtr.Zero)
        {
            Interop.Libc.DlClose(handle);
            return null;
        }
        return Marshal.PtrToStringUTF8(Interop.Libc.DlError()) ?? $"{library}: not found on the loader's path or a library it needs is missing";
    }
}
