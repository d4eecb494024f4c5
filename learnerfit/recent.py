"""A bounded memory of recent keys: what a long-running stage has already seen or done, oldest forgotten first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class Recent:
    """Remembers the last `limit` keys (0: remembers nothing)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> bool:
        """Remembers `key`; True when it was new."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        if self.limit == 0:
            return True
        self._keys[key] = None
        if len(self._keys) > self.limit:
            self._keys.popitem(last=False)
        return True

    def discard(self, key: Hashable) -> None:
        """Forgets `key` (e.g. a record that failed: its replay must not look like a duplicate)."""
        self._keys.pop(key, None)
