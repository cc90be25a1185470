"""What the fuzz tests share: junk values, JSON mutations, a per-example time limit, file hashes.

Every fuzz test asserts the same contract (issue 11): a run ends in success or in a
``FusereviewError`` that names the file (and, for a field inside it, the field), it never hangs
(each example runs under a wall-clock alarm), and the inputs are byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

#: Shared settings: few examples (the suite runs on 2 cores), no deadline (a loaded machine is
#: slow, not broken: hangs are caught by :func:`time_limit`), derandomised so every run tries the
#: same inputs, no example database written into the checkout.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),  # the explain phase can take minutes
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


# FUSEREVIEW_FUZZ_SCALE=20 runs 20 times the examples, random instead of derandomised: a longer
# hunt on a free machine (the suite itself stays bounded and repeatable).
_SCALE = max(1, int(os.environ.get("FUSEREVIEW_FUZZ_SCALE", "1")))


def fuzz_settings(max_examples: int) -> settings:
    """:data:`FUZZ` with ``max_examples`` (scaled by ``FUSEREVIEW_FUZZ_SCALE``)."""
    return settings(FUZZ, max_examples=max_examples * _SCALE, derandomize=_SCALE == 1)


class Hang(AssertionError):
    """An example ran past its time limit: a hang is a failure, never a blocked suite."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread if the block runs longer than ``seconds`` (wall clock)."""

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"{what} ran longer than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def nested(levels: int) -> Any:
    out: Any = []
    for _ in range(levels - 1):
        out = [out]
    return out


#: Values of every JSON type, and the ones parsers accept but nothing downstream can hold.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "\ud800", "a\udcffb", "..", "../../x.jpg", "/etc/passwd", "x" * 100_000, "é" * 50]),
    st.lists(st.integers(min_value=-5, max_value=5000), max_size=6),
    st.lists(st.floats(allow_nan=True), max_size=6),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.sampled_from([{"size": [1, 1], "counts": 7}, {"size": [48, 64], "counts": "ÿÿÿ"}, {"counts": []}]),
    st.integers(min_value=2, max_value=120).map(nested),
)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON tree (keys and indices), the root excluded."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths_of(v, (*prefix, i))
    return out


@st.composite
def mutated_json(draw: st.DrawFn, original: Any, *, max_changes: int = 3) -> bytes:
    """``original`` with a few values replaced, keys removed or added, then maybe the text damaged."""
    data = json.loads(json.dumps(original))
    paths = paths_of(data)
    for _ in range(draw(st.integers(min_value=1, max_value=max_changes))):
        path = draw(st.sampled_from(paths))
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
            if action == "replace":
                node[path[-1]] = copy.deepcopy(draw(JUNK))
            elif action == "delete":
                del node[path[-1]]
            elif isinstance(node, dict):
                node[draw(st.sampled_from(["x_new", "id", "bbox", "extra", "\ud800"]))] = copy.deepcopy(
                    draw(JUNK)
                )
            elif isinstance(node, list):
                node.append(copy.deepcopy(draw(JUNK)))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    text = json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "deep", "e400", "digits"]))
    if damage == "truncate":
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    elif damage == "deep":
        text = text.replace(b"[", b"[" * 80 + b"[", 1).replace(b"]", b"]" + b"]" * 80, 1)
    elif damage == "e400":
        text = text.replace(b"1", b"1e400", 1)
    elif damage == "digits":
        text = text.replace(b"1", b"9" * 5000, 1)
    return text


def tree_digest(folder: Path) -> str:
    """Hash of every file's path and bytes under ``folder`` (symlinks by their target)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode("utf-8", "surrogateescape"))
        if p.is_symlink():
            h.update(str(p.readlink()).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()
