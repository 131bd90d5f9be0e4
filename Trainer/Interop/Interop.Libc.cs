using System.Runtime.InteropServices;

namespace Trainer;

internal static unsafe partial class Interop
{
    /// <summary>
    /// The C library: the socket calls the CPU ring needs without allocating (non-blocking send/recv with two
    /// buffers, poll over both ring sockets at once: System.Net.Sockets has neither without allocating per call),
    /// signals, _exit, fsync of a folder, dlopen's reason, and glibc's mallopt. Safe wrappers: Runtime/Posix.cs,
    /// Runtime/NativeAllocator.cs, Distributed/Cpu/RingSocket*.
    /// </summary>
    internal static partial class Libc
    {
        private const string Library = "libc";

        public const short PollIn = 0x001;
        public const short PollOut = 0x004;
        public const short PollErr = 0x008;
        public const short PollHup = 0x010;
        public const short PollNval = 0x020;

        public const int MsgDontWait = 0x40;
        public const int MsgNoSignal = 0x4000;

        public const int EIntr = 4;
        public const int EAgain = 11;

        public const int ShutWrite = 1;
        public const int ShutReadWrite = 2;

        [StructLayout(LayoutKind.Sequential)]
        public struct PollFd
        {
            public int Fd;
            public short Events;
            public short ReturnedEvents;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct IoVec
        {
            public void* Base;
            public nuint Length;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct MessageHeader
        {
            public void* Name;
            public uint NameLength;
            public IoVec* Vectors;
            public nuint VectorCount;
            public void* Control;
            public nuint ControlLength;
            public int Flags;
        }

        [LibraryImport(Library, EntryPoint = "sendmsg", SetLastError = true)]
        public static partial nint SendMessage(int fd, MessageHeader* message, int flags);

        [LibraryImport(Library, EntryPoint = "recvmsg", SetLastError = true)]
        public static partial nint ReceiveMessage(int fd, MessageHeader* message, int flags);

        [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
        public static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

        [LibraryImport(Library, EntryPoint = "shutdown", SetLastError = true)]
        public static partial int Shutdown(int fd, int how);

        public const int RtldNow = 2;

        [LibraryImport(Library, EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
        public static partial IntPtr DlOpen(string file, int mode);

        [LibraryImport(Library, EntryPoint = "dlerror")]
        public static partial IntPtr DlError();

        [LibraryImport(Library, EntryPoint = "dlclose")]
        public static partial int DlClose(IntPtr handle);

        [LibraryImport(Library, EntryPoint = "kill", SetLastError = true)]
        public static partial int Kill(int pid, int signal);

        [LibraryImport(Library, EntryPoint = "raise")]
        public static partial int Raise(int signal);

        [LibraryImport(Library, EntryPoint = "_exit")]
        public static partial void Exit(int status);

        [LibraryImport(Library, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int Open(string path, int flags);

        [LibraryImport(Library, EntryPoint = "fsync", SetLastError = true)]
        public static partial int Fsync(int fd);

        [LibraryImport(Library, EntryPoint = "close")]
        public static partial int Close(int fd);

        [LibraryImport(Library, EntryPoint = "mallopt")]
        public static partial int Mallopt(int param, int value);
    }
}
