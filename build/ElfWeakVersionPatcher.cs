// Marks one symbol-version requirement of an ELF64 shared library weak (VER_FLG_WEAK), so that the
// dynamic loader accepts a host whose libstdc++ lacks that version. See TorchSharpGlibcxxFix.targets.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class ElfWeakVersionPatcher : Task
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Version { get; set; } = "";

    public override bool Execute()
    {
        if (HostProvides(Version))
        {
            Log.LogMessage(MessageImportance.Low, $"Host libstdc++ provides {Version}; nothing to patch.");
            return true;
        }
        foreach (var item in Libraries)
        {
            var path = item.ItemSpec;
            try
            {
                var bytes = File.ReadAllBytes(path);
                switch (MarkWeak(bytes, Version))
                {
                    case PatchResult.Patched:
                        var temp = path + ".patching";
                        File.WriteAllBytes(temp, bytes);
                        File.Replace(temp, path, null);
                        Log.LogMessage(MessageImportance.High, $"TorchSharp fix: marked {Version} weak in {path}");
                        break;
                    case PatchResult.AlreadyWeak:
                        Log.LogMessage(MessageImportance.Low, $"{path}: {Version} already weak.");
                        break;
                    case PatchResult.NotRequired:
                        Log.LogMessage(MessageImportance.Low, $"{path} does not require {Version}.");
                        break;
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                Log.LogError($"Could not patch {path}: {e.Message}");
            }
        }
        return !Log.HasLoggedErrors;
    }

    static bool HostProvides(string version)
    {
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (var dir in new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64" })
        {
            var lib = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(lib))
                return IndexOf(File.ReadAllBytes(lib), needle) >= 0;
        }
        return false;
    }

    public enum PatchResult { NotRequired, AlreadyWeak, Patched }

    public static PatchResult MarkWeak(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("only little-endian ELF64 is supported");
        var shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (var i = 0; i < shnum; i++)
        {
            var sh = (int)(shoff + (long)i * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
            var offset = (int)BitConverter.ToUInt64(elf, sh + 0x18);
            var link = BitConverter.ToUInt32(elf, sh + 0x28);
            var strtab = (int)BitConverter.ToUInt64(elf, (int)(shoff + link * shentsize) + 0x18);
            var need = offset;
            while (true)
            {
                int count = BitConverter.ToUInt16(elf, need + 2);
                var aux = need + (int)BitConverter.ToUInt32(elf, need + 8);
                for (var a = 0; a < count; a++)
                {
                    var name = ReadString(elf, strtab + (int)BitConverter.ToUInt32(elf, aux + 8));
                    if (name == version)
                    {
                        var flags = BitConverter.ToUInt16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0) return PatchResult.AlreadyWeak;
                        var weak = (ushort)(flags | VerFlgWeak);
                        elf[aux + 4] = (byte)weak;
                        elf[aux + 5] = (byte)(weak >> 8);
                        return PatchResult.Patched;
                    }
                    aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                }
                var next = BitConverter.ToUInt32(elf, need + 12);
                if (next == 0) break;
                need += (int)next;
            }
        }
        return PatchResult.NotRequired;
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Length; i++)
        {
            var j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    static string ReadString(byte[] data, int start)
    {
        var end = Array.IndexOf(data, (byte)0, start);
        return Encoding.ASCII.GetString(data, start, end - start);
    }
}
