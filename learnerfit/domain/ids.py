"""Stable ids derived from content, so a record delivered twice is recognised as the same record."""

from __future__ import annotations

import hashlib
import re

from learnerfit.errors import InvalidInput

# What an id given by a client may look like before it names a file or a folder (an export's default path, a
# batch): letters, digits, '.', '_' and '-', not starting with '.', so it can never be "..", "/x" or hidden.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


# A registered checkpoint's version: v1, v2, ... at most 9 digits, a number SQLite and Python agree on.
_VERSION = re.compile(r"^v([1-9]\d{0,8})$")


def version_number(version: str, field: str = "version") -> int:
    """The number of a checkpoint version ("v12" -> 12); InvalidInput naming `field` for anything else."""
    match = _VERSION.match(version or "")
    if match is None:
        raise InvalidInput(field, f"{(version or '')[:80]!r} is not a registered version (v1, v2, ...)")
    return int(match.group(1))


def check_name(value: str, field: str) -> str:
    """`value` if it is a safe name; InvalidInput naming `field` otherwise."""
    if not _NAME.match(value or ""):
        raise InvalidInput(field, f"{value[:80]!r} is not a valid name (letters, digits, '.', '_', '-'; at most 128; "
                                  "not starting with '.')")
    return value


def stable_id(kind: str, *parts: object) -> str:
    """A short id that depends only on `kind` and `parts` (e.g. "traj-3f9a...")."""
    digest = hashlib.sha256()
    for part in (kind, *parts):
        encoded = str(part).encode("utf-8")
        # Length-prefix each part so ("ab", "c") and ("a", "bc") differ.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return f"{kind}-{digest.hexdigest()[:20]}"
