"""POSIX access ACLs read and extended through the extended attribute, without setfacl."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

# POSIX ACLs as the kernel stores them in the system.posix_acl_access extended attribute (no setfacl needed).
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
PERM_WORDS = {1: "search (x)", 4: "read (r)", 5: "read (r-x)", 6: "read and write (rw)", 7: "full (rwx)"}


def _read_acl(path: Path) -> dict[tuple[int, int], int]:
    """The access ACL of ``path`` as {(tag, id): perms}; the mode bits when it has none."""
    try:
        blob = os.getxattr(path, _ACL_XATTR)
    except OSError as error:
        if error.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
        mode = os.stat(path).st_mode
        return {
            (_USER_OBJ, _UNDEFINED_ID): (mode >> 6) & 7,
            (_GROUP_OBJ, _UNDEFINED_ID): (mode >> 3) & 7,
            (_OTHER, _UNDEFINED_ID): mode & 7,
        }
    (version,) = struct.unpack_from("<I", blob)
    if version != _ACL_VERSION:
        raise OSError(errno.EINVAL, f"unknown ACL version {version}", str(path))
    entries = {}
    for offset in range(4, len(blob), 8):
        tag, perms, ident = struct.unpack_from("<HHI", blob, offset)
        entries[(tag, ident)] = perms
    return entries


def grant_group(path: Path, gid: int, perms: int) -> bool:
    """Add ``perms`` (4 r, 2 w, 1 x) for group ``gid`` to the access ACL of ``path``; False when it had them."""
    entries = _read_acl(path)
    mask = entries.get((_MASK, _UNDEFINED_ID), entries[(_GROUP_OBJ, _UNDEFINED_ID)])
    current = entries.get((_GROUP, gid), 0)
    if current & perms == perms and mask & perms == perms:
        return False
    entries[(_GROUP, gid)] = current | perms
    entries[(_MASK, _UNDEFINED_ID)] = mask | perms  # widen the mask by what we add, nothing more
    blob = struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", tag, value, ident) for (tag, ident), value in sorted(entries.items())
    )
    os.setxattr(path, _ACL_XATTR, blob)
    return True
