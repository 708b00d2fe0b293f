#!/usr/bin/env python3
"""Writes the seed archives of tests/fuzz/corpus/bundle/.

Run once by hand when seeds change; the output is committed. Every seed is
deterministic (times, owners 0) and under 8 KiB. Needs the zstd program.

fuzz_bundle extracts with strip = size % 3, so each seed is padded with
trailing NUL bytes (inside the compression for compressed ones) to the
strip it wants: 0 unless the name says "stripN".

    tests/fuzz/make_bundle_seeds.py [OUT_DIR]
"""
import bz2
import gzip
import hashlib
import io
import lzma
import os
import struct
import subprocess
import sys
import tarfile
import zipfile

SEED_MAX = 8 * 1024


# ---- tar ----

def member(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", size=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = link
    ti.size = len(data) if size is None else size
    return ti, data


def tar(members, fmt=tarfile.PAX_FORMAT):
    """A tar without the padding to a 10 KiB record: libarchive stops at the end marker."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() and data else None)
        end = tf.offset
    return out.getvalue()[:end + 1024]


def tar_raw_size(name, claimed, data):
    """A ustar header claiming `claimed` bytes, followed by only `data`."""
    ti, _ = member(name, size=claimed)
    return ti.tobuf(tarfile.USTAR_FORMAT) + data.ljust((len(data) + 511) // 512 * 512, b"\0")


def pad(data, strip):
    return data + b"\0" * ((strip - len(data)) % 3)


def compressed(compress, tar_data, strip):
    """Decompressors reject trailing bytes: pad the tar inside, after its end
    marker, with bytes that do not compress away, until the size fits."""
    junk = hashlib.sha256(b"pad").digest() * 4
    for i in range(len(junk)):
        data = compress(tar_data + junk[:i])
        if len(data) % 3 == strip:
            return data
    sys.exit("cannot pad a compressed seed")


def gz(data, strip=0):
    return compressed(lambda d: gzip.compress(d, mtime=0), data, strip)


def bz(data, strip=0):
    return compressed(bz2.compress, data, strip)


def xz(data, strip=0):
    # The smallest dictionary: the decoder allocates what the header declares,
    # and mutants of a 64 MiB-dictionary seed would run at a few execs/s.
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 4096}]
    return compressed(lambda d: lzma.compress(d, filters=filters), data, strip)


def zstd(data, strip=0):
    # A 16 KiB window, for the same reason as xz's dictionary.
    return compressed(lambda d: subprocess.run(
        ["zstd", "-19", "--zstd=wlog=14", "-q", "-c", "--no-check"], input=d,
        stdout=subprocess.PIPE, check=True).stdout, data, strip)


# ---- zip, cpio, ar ----

def zip_archive(entries):
    """entries: (name, data, unix mode) tuples; a mode with S_IFLNK stores a symlink."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.create_system = 3
            zi.external_attr = mode << 16
            zf.writestr(zi, data)
    return out.getvalue()


def cpio(entries):
    """newc cpio; entries: (name, mode, data)."""
    out = b""
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        nm = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nm), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + nm
        out += hdr + b"\0" * (-len(hdr) % 4) + data + b"\0" * (-len(data) % 4)
    return out


def ar(entries):
    out = b"!<arch>\n"
    for name, data in entries:
        out += b"%-16s%-12d%-6d%-6d%-8o%-10d`\n" % (name.encode(), 0, 0, 0, 0o100644, len(data))
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "bundle")
    os.makedirs(out_dir, exist_ok=True)

    D, R, S, L = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
    good = [
        member("pkg/", D, mode=0o755),
        member("pkg/README", data=b"hello\n"),
        member("pkg/bin/", D, mode=0o755),
        member("pkg/bin/run", data=b"#!/bin/sh\necho hi\n", mode=0o755),
        member("pkg/empty"),
        member("pkg/link", S, link="README"),
        member("pkg/bin/up", S, link="../README"),
        member("pkg/bin/self", S, link="."),
    ]
    good_tar = tar(good)
    zip_good = [("pkg/", b"", 0o40755), ("pkg/README", b"hello\n", 0o100644),
                ("pkg/bin/run", b"#!/bin/sh\necho hi\n", 0o100755),
                ("pkg/link", b"README", 0o120777)]
    many = [member("m/f%04d" % i) for i in range(1001)]

    seeds = {
        # Archives that extract.
        "ok.tar": good_tar,
        "ok.tar.gz": gz(good_tar),
        "ok.tar.zst": zstd(good_tar),
        "ok.tar.xz": xz(good_tar),
        "ok-gnu-strip1.tar": pad(tar(good, tarfile.GNU_FORMAT), 1),
        "ok-strip1.tar.bz2": bz(good_tar, 1),
        "ok-strip2.tar.gz": gz(good_tar, 2),  # pkg/bin/up -> ../README now leaves
        "ok-ustar.tar": tar(good[:5], tarfile.USTAR_FORMAT),
        "ok.zip": zip_archive(zip_good),
        "ok.cpio": cpio([("pkg", 0o40755, b""), ("pkg/README", 0o100644, b"hello\n"),
                         ("pkg/link", 0o120777, b"README")]),
        "ok.a": ar([("README/", b"hello\n"), ("run.o/", b"\x7fELF")]),
        "long-name.tar": tar([member("d/" + "x" * 150 + "/" + "y" * 120, data=b"z")]),
        "dot-names.tar": tar([member("./", D, mode=0o755), member("./a/./b//c", data=b"c"),
                              member("./a/", D, mode=0o755)]),
        "replace-file.tar": tar([member("f", data=b"one"), member("f", data=b"two", mode=0o755)]),
        "odd-modes.tar": tar([member("suid", data=b"x", mode=0o4755),
                              member("sgid-dir/", D, mode=0o2777),
                              member("sticky", data=b"x", mode=0o1777)]),
        "link-chain-ok.tar": tar([member("a/", D, mode=0o755), member("a/b/", D, mode=0o755),
                                  member("a/b/up", S, link="../.."),
                                  member("a/b/c", S, link="../../a/b/up/a")]),
        "empty": b"",
        "garbage": b"this is not an archive\n",
        # Archives that must be refused, without writing outside dest.
        "dotdot.tar": tar([member("../evil", data=b"x")]),
        "dotdot-inner.tar": tar([member("a/../../evil", data=b"x")]),
        "absolute.tar": tar([member("/tmp/evil", data=b"x")]),
        "link-absolute.tar": tar([member("l", S, link="/etc")]),
        "link-up.tar": tar([member("l", S, link="../outside")]),
        "link-up-deep.tar": tar([member("a/l", S, link="../../outside")]),
        "link-chain.tar": tar([member("b", S, link="."), member("c", S, link="b/b/../..")]),
        "link-then-write.tar": tar([member("d", S, link="."), member("d/x", data=b"x")]),
        "link-dir-then-write.tar": tar([member("sub/", D, mode=0o755), member("sub/up", S, link=".."),
                                        member("sub/up/up/evil", data=b"x")]),
        "link-twice.tar": tar([member("l", S, link="a"), member("l", S, link="b")]),
        "file-then-dir.tar": tar([member("x", data=b"x"), member("x/y", data=b"y")]),
        "dir-then-file.tar": tar([member("x/", D, mode=0o755), member("x", data=b"x")]),
        "hardlink.tar": tar([member("f", data=b"x"), member("h", L, link="f")]),
        "fifo.tar": tar([member("p", tarfile.FIFOTYPE)]),
        "chardev.tar": tar([member("c", tarfile.CHRTYPE)]),
        "blockdev.tar": tar([member("b", tarfile.BLKTYPE)]),
        "entry-too-big.tar": tar_raw_size("big", 2 << 20, b"short"),
        "truncated.tar": good_tar[:700],
        "truncated.tar.gz": gz(good_tar)[:120],
        "bomb.tar.zst": zstd(tar([member("zeros", data=bytes(5 << 20))])),
        "total-too-big.tar.zst": zstd(tar([member("z%d" % i, data=bytes(900 << 10))
                                           for i in range(5)])),
        "many-entries.tar.xz": xz(tar(many)),
        "zip-slip.zip": zip_archive([("../evil", b"x", 0o100644)]),
        "zip-link-absolute.zip": zip_archive([("l", b"/etc/passwd", 0o120777)]),
        "cpio-dotdot.cpio": cpio([("../evil", 0o100644, b"x")]),
        # Regressions found by fuzz_bundle; these fail until the bug is fixed.
        # One file 1100 directories deep: extracts, but fs_rm_rf() keeps a
        # descriptor per level and fails with EMFILE under RLIMIT_NOFILE 1024.
        "regress-deep-tree.tar.zst": zstd(tar([member("a/" * 1100 + "f")])),
    }
    total = 0
    for name, data in sorted(seeds.items()):
        strip = int(name.split("strip")[1][0]) if "strip" in name else 0
        if not name.endswith((".gz", ".bz2", ".xz", ".zst")):
            data = pad(data, strip)
        assert len(data) % 3 == strip, name
        if len(data) >= SEED_MAX:
            sys.exit("seed %s is %d bytes, over %d" % (name, len(data), SEED_MAX))
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("%d seeds, %d bytes, in %s" % (len(seeds), total, out_dir))


if __name__ == "__main__":
    main()
