"""File names as the photographer named them.

A Roboflow export renames every image ``<stem>_<ext>.rf.<32 hex>.<ext>`` (``IMG_0001_jpg.rf.3d8e…
.jpg``): unreadable in a list and truncated in the middle, which is where the part that tells
photos apart is. :func:`display_name` gives back ``IMG_0001.jpg``; the stored name stays the
file's real name (it is what export writes and what opens the file), shown in tooltips.
"""

from __future__ import annotations

import re

# <stem>_<ext>.rf.<hash>.<ext>: the hash is hex (32 in current exports; be lenient on its length)
_ROBOFLOW = re.compile(r"^(?P<stem>.+)_(?P<ext>[A-Za-z0-9]{2,5})\.rf\.[0-9a-fA-F]{8,64}\.[A-Za-z0-9]{2,5}$")


def display_name(file_name: str) -> str:
    """The name to show for an image file: Roboflow's ``IMG_0001_jpg.rf.<hash>.jpg`` as ``IMG_0001.jpg``.

    Folders in the name are kept; anything that is not a Roboflow name is returned unchanged.
    """
    folder, sep, base = file_name.rpartition("/")
    m = _ROBOFLOW.match(base)
    if m is None:
        return file_name
    return f"{folder}{sep}{m.group('stem')}.{m.group('ext')}"


def display_names(file_names: list[str]) -> dict[str, str]:
    """:func:`display_name` of many files, told apart where two would read the same.

    Roboflow's augmentations export several versions of one photo (same stem, another hash):
    those keep the first 4 characters of their hash, ``IMG_0001.jpg (3d8e)``.
    """
    short = {n: display_name(n) for n in file_names}
    seen: dict[str, int] = {}
    for s in short.values():
        seen[s] = seen.get(s, 0) + 1
    out = {}
    for name, s in short.items():
        if seen[s] > 1 and s != name:
            digest = name.rpartition(".rf.")[2][:4]
            out[name] = f"{s} ({digest})"
        else:
            out[name] = s
    return out
