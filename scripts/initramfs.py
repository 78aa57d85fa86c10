#!/usr/bin/env python3
"""Writes a Linux initramfs: a cpio archive in the "newc" format the kernel
unpacks (Documentation/driver-api/early-userspace/buffer-format.rst),
Python 3 standard library only. scripts/linux.sh uses it.

  initramfs.py OUT < SPEC

SPEC lists the entries, one a line, in the kernel's own gen_init_cpio
format (usr/gen_init_cpio.c), so no root is needed for device nodes:

  dir   NAME MODE UID GID
  file  NAME HOST-PATH MODE UID GID
  slink NAME TARGET MODE UID GID
  nod   NAME MODE UID GID c|b MAJOR MINOR

MODE is octal; blank lines and lines starting with # are skipped. Every
timestamp is 0, so the same inputs make the same archive.
"""
import stat, sys

def header(ino, mode, uid, gid, nlink, size, rdev, name):
    """A newc header for `name` and the name itself, padded to 4 bytes."""
    fields = [ino, mode, uid, gid, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    out = b"070701" + b"".join(b"%08x" % f for f in fields) + name + b"\0"
    return pad(out)

def pad(data):
    return data + b"\0" * (-len(data) % 4)

def entries(spec):
    """(name, mode, uid, gid, data, rdev) for each line of `spec`."""
    for number, line in enumerate(spec.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        kind, args = words[0], words[1:]
        try:
            if kind == "dir":
                name, mode, uid, gid = args
                yield name, stat.S_IFDIR | int(mode, 8), int(uid), int(gid), b"", (0, 0)
            elif kind == "file":
                name, path, mode, uid, gid = args
                with open(path, "rb") as f:
                    data = f.read()
                yield name, stat.S_IFREG | int(mode, 8), int(uid), int(gid), data, (0, 0)
            elif kind == "slink":
                name, target, mode, uid, gid = args
                yield name, stat.S_IFLNK | int(mode, 8), int(uid), int(gid), target.encode(), (0, 0)
            elif kind == "nod":
                name, mode, uid, gid, dev, major, minor = args
                kind_bits = {"c": stat.S_IFCHR, "b": stat.S_IFBLK}[dev]
                yield name, kind_bits | int(mode, 8), int(uid), int(gid), b"", (int(major), int(minor))
            else:
                raise ValueError(f"unknown entry type {kind!r}")
        except (ValueError, KeyError, OSError) as e:
            sys.exit(f"initramfs.py: line {number}: {line.strip()!r}: {e}")

def archive(spec):
    out = []
    for ino, (name, mode, uid, gid, data, rdev) in enumerate(entries(spec), 1):
        name = name.lstrip("/").encode()
        out.append(header(ino, mode, uid, gid, 2 if stat.S_ISDIR(mode) else 1, len(data), rdev, name))
        out.append(pad(data))
    out.append(header(0, 0, 0, 0, 1, 0, (0, 0), b"TRAILER!!!"))
    return b"".join(out)

def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    data = archive(sys.stdin.read())
    with open(sys.argv[1], "wb") as f:
        f.write(data)

if __name__ == "__main__":
    main()
