"""Reading untrusted ``.npz`` files (numbacnn._npz): every member's header checked before its bytes are read.

``np.load`` trusts a member's header: a few bytes claiming 10^12 elements make it allocate terabytes
(MemoryError), and pickled objects would run code. ``read_npz`` refuses pickles, compressed members that claim to
inflate more than ``MAX_INFLATION`` times, and any member whose header does not match its size in the archive;
every failure, whatever the damage, is the caller's one error type with a message naming the file.
"""
from __future__ import annotations

import os
import stat
import zipfile

import numpy as np

MAX_INFLATION = 1000  # a compressed member may claim at most this many times its compressed size (np.savez_compressed
                      # of an all-zero array reaches about 1000x)


def _header(fp):
    """(shape, fortran_order, dtype) of the .npy member open in ``fp``; ValueError when it is not one."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f"unknown .npy version {version}")


def _member(zf, info, name):
    """One checked member as an array; ValueError naming ``name`` when its header and size disagree."""
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            raise ValueError(f"array {name!r}: stored member sizes disagree ({info.file_size} vs {info.compress_size})")
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > MAX_INFLATION * info.compress_size + 4096:
            raise ValueError(f"array {name!r} claims {info.file_size} bytes from {info.compress_size} compressed")
    else:
        raise ValueError(f"array {name!r} uses an unsupported compression ({info.compress_type})")
    with zf.open(info) as fp:
        shape, fortran, dtype = _header(fp)
        if dtype.hasobject:
            raise ValueError(f"array {name!r} holds Python objects (pickles are never loaded)")
        if not all(isinstance(v, int) and v >= 0 for v in shape):
            raise ValueError(f"array {name!r} has an invalid shape {shape}")
        count = 1
        for v in shape:
            count *= v
        data = count * dtype.itemsize
        offset = fp.tell()
        if offset + data != info.file_size:
            raise ValueError(f"array {name!r}: its header claims shape {shape} of {dtype} ({data} bytes) but "
                             f"the archive holds {info.file_size - offset} bytes")
        raw = fp.read(data)
        fp.read()  # the end of the member: zipfile checks its CRC here
    if len(raw) != data:
        raise ValueError(f"array {name!r} is truncated")
    a = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return a.copy() if not a.flags.writeable else a


def _check_layout(zf, infos):
    """ValueError unless the members fill the archive up to its central directory, one after another: a damaged
    directory that lists fewer members than the archive holds would otherwise drop arrays silently."""
    import struct

    ordered = sorted(infos, key=lambda i: i.header_offset)
    starts = [i.header_offset for i in ordered[1:]] + [getattr(zf, "start_dir", None)]
    if ordered and ordered[0].header_offset != 0:
        raise ValueError("the archive does not start with a member")
    for info, next_start in zip(ordered, starts):
        zf.fp.seek(info.header_offset)
        local = zf.fp.read(30)
        if len(local) != 30:
            raise ValueError("truncated member header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        end = info.header_offset + 30 + name_len + extra_len + info.compress_size
        gap = None if next_start is None else next_start - end
        # a data descriptor may follow the data when the writer could not seek back (12 to 24 bytes)
        if gap is not None and gap != 0 and not (info.flag_bits & 0x08 and gap in (12, 16, 20, 24)):
            raise ValueError(f"the archive's directory does not match its members (member {info.filename!r} "
                             f"ends at byte {end}, the next part starts at {next_start})")


def read_npz(path, error=ValueError, what="file") -> dict:
    """{name: ndarray} of every member of the ``.npz`` at ``path``, each checked before it is read.

    Raises ``error`` (the caller's one error type) with a message naming ``what`` and ``path`` for a missing,
    unreadable, truncated, corrupt or hostile file; never MemoryError for a header that lies about sizes.
    """
    shown = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{shown!r}: the {what} is missing") from None
    except OSError as exc:
        raise error(f"{shown!r}: the {what} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise error(f"{shown!r}: the {what} is not a file")
    try:
        with zipfile.ZipFile(path) as zf:
            out = {}
            _check_layout(zf, zf.infolist())
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"member {info.filename!r} is not a .npy array")
                name = info.filename[:-4]
                out[name] = _member(zf, info, name)
            return out
    except MemoryError:
        raise error(f"{shown!r}: the {what} is too large to read into memory") from None
    except Exception as exc:  # BadZipFile, OSError (EIO), EOFError, ValueError, struct.error, ...: all are damage
        raise error(f"{shown!r} is truncated, damaged or not a {what} (a NumPy .npz archive: {exc})") from None
