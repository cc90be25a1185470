"""Check many compressed COCO RLE strings at once, before pycocotools ever sees them.

pycocotools decodes RLE counts without bounds checks: runs that add up past ``height x width``
make ``rleDecode`` write out of bounds and ``computeIoU`` loop forever (a results file did that to
``fusereview eval``). :func:`fusereview.core.geometry.rle_counts_from_string` checks one string in
Python; an evaluation has 100,000 detections, so this module decodes all their strings in a few
numpy passes over the concatenated bytes and checks each one: only characters of the encoding,
no truncated count, no negative run, runs summing to exactly ``height x width``.

The encoding (pycocotools ``rleToString``): each count is written in 5-bit groups, least
significant first, as ``chr(48 + group)``; bit 0x20 says another group follows; the last group's
bit 0x10 is the sign. From the third count on, each count is stored as its difference from the
count two places before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# A count of more than 7 groups (35 bits) is no run of any image we accept (and would overflow).
_MAX_GROUPS = 7


def check_rle_strings(counts: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[str | None]:
    """Per RLE, ``None`` when it is valid, else why not.

    Parameters
    ----------
    counts:
        The compressed ``counts`` strings.
    sizes:
        Each RLE's ``(height, width)``.

    Returns
    -------
    list of str or None
        One entry per string: ``None`` (valid) or the reason, e.g. ``"RLE runs cover 10 pixels
        but its size 4x4 has 16"``.
    """
    reasons: list[str | None] = []
    # in chunks: the arrays hold one entry per character (700 for a typical detection's mask)
    for start in range(0, len(counts), _CHUNK):
        reasons.extend(_check_chunk(counts[start : start + _CHUNK], sizes[start : start + _CHUNK]))
    return reasons


_CHUNK = 4096


def _check_chunk(counts: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[str | None]:
    n = len(counts)
    reasons: list[str | None] = [None] * n
    # a non-ASCII string cannot be of the encoding: one invalid byte stands for it
    encoded = [s.encode("ascii") if s.isascii() else b"\xff" for s in counts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    c = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.int16) - 48
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    bad = np.bincount(owner[(c < 0) | (c > 63)], minlength=n) > 0
    # a count ends at a group without the continuation bit; so must every string
    ends = (c & 0x20) == 0
    last = np.cumsum(lengths) - 1
    truncated = np.zeros(n, dtype=bool)
    truncated[lengths > 0] = ~ends[last[lengths > 0]]
    # decode only well-formed strings: a truncated one would run into the next string's counts
    good_chars = ~(bad | truncated)[owner]
    c, ends, owner = c[good_chars], ends[good_chars], owner[good_chars]
    end_idx = np.flatnonzero(ends)
    count_owner = owner[end_idx]
    count_start = np.concatenate([[0], end_idx[:-1] + 1]) if len(end_idx) else end_idx
    groups = end_idx - count_start + 1  # characters (5-bit groups) of each count
    too_long = np.bincount(count_owner[groups > _MAX_GROUPS], minlength=n) > 0
    count_of_char = np.repeat(np.arange(len(end_idx)), groups)
    position = np.arange(len(c)) - count_start[count_of_char]
    # exact in float64: every value is below 2**35
    value = np.bincount(
        count_of_char,
        weights=(c.astype(np.int64) & 0x1F) << (5 * np.minimum(position, _MAX_GROUPS)),
        minlength=len(end_idx),
    ).astype(np.int64)
    sign = (c[end_idx] & 0x10) != 0
    value[sign] -= np.int64(1) << (5 * np.minimum(groups[sign], _MAX_GROUPS + 1))
    runs = _undo_delta(value, count_owner)
    for i in np.flatnonzero(bad):
        reasons[i] = "compressed RLE counts string has a character outside its encoding"
    for i in np.flatnonzero(truncated & ~bad):
        reasons[i] = "compressed RLE counts string is truncated"
    for i in np.flatnonzero(too_long & ~bad & ~truncated):
        reasons[i] = "compressed RLE counts string holds a run longer than any image"
    ok = ~(bad | truncated | too_long)
    totals = np.bincount(count_owner, weights=runs, minlength=n)
    negative = np.bincount(count_owner[runs < 0], minlength=n) > 0
    area = np.array([h * w for h, w in sizes], dtype=np.float64)
    for i in np.flatnonzero(ok & negative):
        reasons[i] = "RLE counts must not be negative"
    for i in np.flatnonzero(ok & ~negative & (totals != area)):
        h, w = sizes[i]
        reasons[i] = f"RLE runs cover {int(totals[i])} pixels but its size {h}x{w} has {h * w}"
    return reasons


def _undo_delta(value: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """From the third count of a string on, count += the count two places before it.

    Odd counts are a running sum from count[1]; even counts from count[2] on likewise (count[0]
    stands alone). Running sums restart at every string.
    """
    first_of_string = np.searchsorted(owner, owner, side="left")
    index = np.arange(len(value)) - first_of_string
    runs = value.copy()
    for sel in ((index >= 2) & (index % 2 == 0), index % 2 == 1):
        idx = np.flatnonzero(sel)
        if len(idx) == 0:
            continue
        csum = np.cumsum(value[idx])
        seg_start = np.concatenate([[True], owner[idx][1:] != owner[idx][:-1]])
        first = np.maximum.accumulate(np.where(seg_start, np.arange(len(idx)), 0))
        runs[idx] = csum - np.where(first > 0, csum[first - 1], 0)
    return runs
