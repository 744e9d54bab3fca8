"""Near-duplicate grouping by perceptual hash, in bounded memory."""

import numpy as np

from sleuth.scan import output
from sleuth.scan.output import NEAR_BITS, near_groups


def brute_force(hashes: list[int]) -> set[frozenset[int]]:
    """Connected components of 'at most NEAR_BITS bits apart', pair by pair."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(hashes):
        for j, b in enumerate(hashes[:i]):
            if bin(a ^ b).count("1") <= NEAR_BITS:
                parent[root(i)] = root(j)
    members: dict[int, set[int]] = {}
    for k in range(len(hashes)):
        members.setdefault(root(k), set()).add(k)
    return {frozenset(m) for m in members.values() if len(m) > 1}


def test_groups_are_the_same_whatever_the_block_size(monkeypatch):
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, 2**63, size=12, dtype=np.uint64)
    hashes = []
    for k in range(300):  # variants of a few hashes, a few bits flipped each
        flips = rng.choice(64, size=rng.integers(0, 7), replace=False)
        hashes.append(int(seeds[k % 12]) ^ sum(1 << int(b) for b in flips))
    numbers = np.arange(100, 400, dtype=np.int64)
    whole = near_groups(numbers, np.array(hashes, dtype=np.uint64))
    monkeypatch.setattr(output, "PAIRS_AT_ONCE", 7 * len(hashes))  # 7 rows a block
    blocked = near_groups(numbers, np.array(hashes, dtype=np.uint64))
    assert whole == blocked and whole
    found: dict[int, set[int]] = {}
    for number, group in whole.items():
        found.setdefault(group, set()).add(int(number) - 100)
    assert {frozenset(g) for g in found.values()} == brute_force(hashes)
    assert sorted(found) == list(range(1, len(found) + 1))
