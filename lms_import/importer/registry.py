"""A compact hash table for the checker's cross-row state.

What must grow with the file is one entry per distinct learner without an account and per
distinct enrollment. As Python dicts of int -> int those cost ~130 bytes an entry; here an entry
is a slot in a few typed arrays (open addressing, linear probing): 8 bytes of key plus its values.
"""

from array import array

EMPTY = 0
_WORD = (1 << 64) - 1
# Fibonacci hashing: the top bits of key * 2^64/phi spread even sequential keys (learner << 22 | course)
# evenly over the slots; taking low bits of such keys would pile them into a few long probe runs.
_GOLDEN = 0x9E3779B97F4A7C15


def table_key(value: int) -> int:
    """A non-zero unsigned 64-bit key (0 marks an empty slot)."""
    value &= _WORD
    return value or 0x9E3779B97F4A7C15


def table_capacity(entries: int, load: float = 0.7, most: int = 1 << 22) -> int:
    """The power of two that holds `entries` below the load factor (at least 4096, at most `most` to start)."""
    capacity = 1 << 12
    while capacity * load < entries and capacity < most:
        capacity <<= 1
    return capacity


class PackedTable:
    """Keys (non-zero uint64) to rows of fixed-width values, one array per column."""

    def __init__(self, typecodes: str, capacity: int = 1 << 12, load: float = 0.7):
        self.typecodes = typecodes
        self.load = load
        self.count = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.shift = 64 - (capacity.bit_length() - 1)
        self.limit = int(capacity * self.load)
        self.keys = array("Q", [EMPTY]) * capacity
        self.columns = [array(code, [0]) * capacity for code in self.typecodes]

    def find(self, key: int) -> int:
        """The slot of key, or -1."""
        keys, mask = self.keys, self.mask
        slot = ((key * _GOLDEN) & _WORD) >> self.shift
        while True:
            found = keys[slot]
            if found == key:
                return slot
            if found == EMPTY:
                return -1
            slot = (slot + 1) & mask

    def insert(self, key: int) -> int:
        """A new slot for key (which must not be in the table); its values start at 0."""
        if self.count >= self.limit:
            self._grow()
        keys, mask = self.keys, self.mask
        slot = ((key * _GOLDEN) & _WORD) >> self.shift
        while keys[slot] != EMPTY:
            slot = (slot + 1) & mask
        keys[slot] = key
        self.count += 1
        return slot

    def _grow(self) -> None:
        old_keys, old_columns = self.keys, self.columns
        self._allocate((self.mask + 1) * 2)
        self.count = 0
        for old_slot, key in enumerate(old_keys):
            if key != EMPTY:
                slot = self.insert(key)
                for column, old in zip(self.columns, old_columns, strict=True):
                    column[slot] = old[old_slot]

    def __len__(self) -> int:
        return self.count
