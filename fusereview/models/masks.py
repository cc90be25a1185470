"""Mask logits to COCO RLE at the image's own size, one detection at a time, in bounded memory.

The model's masks are low-resolution logits (e.g. 288 x 288 for SAM3). Resizing all kept masks of
a 6000 x 4000 photo to full size at once, as float32, costs ``K x 96 MB`` (30 detections: 2.9 GB;
SAM3's 200 queries at threshold 0.05: about 20 GB). Here each mask is resized on its own, only
where it can be positive, a strip of columns at a time, and its run-length encoding is built from
the strips directly: no full-size array of any kind is made, so the memory a detection costs is a
few megabytes whatever the photo size.

The result is bit for bit the old one, ``F.interpolate(..., mode="bilinear",
align_corners=False) > 0`` (logit 0 is SAM3's sigmoid 0.5): the resize runs as PyTorch's own two
1-D passes (its 2-D kernel is exactly those), and the output is cut only where it cannot be
positive: outside the output rows and columns whose two source taps touch the mask's positive
low-resolution pixels, every value is a non-negative mix of non-positive logits.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

#: Output pixels per strip (columns x rows): about 8 MB of float32 per strip, whatever the photo.
STRIP_PIXELS = 1 << 21


@lru_cache(maxsize=32)
def _taps_cpu(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of each output position of a bilinear resize ``n_in -> n_out``.

    PyTorch's rule (``align_corners=False``): ``src = max(scale * (dst + 0.5) - 0.5, 0)`` with
    ``scale = n_in / n_out`` in float32 and the multiply-add rounded once (its CPU kernel uses a
    fused multiply-add), ``i0 = floor(src)``, ``i1 = min(i0 + 1, n_in - 1)``, weights
    ``1 - frac`` and ``frac``.
    """
    dst = np.arange(n_out, dtype=np.float64)
    scale = np.float64(np.float32(n_in) / np.float32(n_out))
    # the float64 product of a float32 scale and dst + 0.5 is exact: one rounding, as an FMA
    src = (scale * (dst + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), 0.0, 1.0).astype(np.float32)
    w0 = (np.float32(1.0) - w1).astype(np.float32)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, w0, w1


@lru_cache(maxsize=16)
def _taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The source indices ``(i0, i1)`` of :func:`_taps_cpu` as tensors on ``device``."""
    i0, i1, _w0, _w1 = _taps_cpu(n_in, n_out)
    return torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device)


def _span(i0: torch.Tensor, i1: torch.Tensor, lo: int, hi: int) -> tuple[int, int]:
    """Output positions ``[start, end)`` whose source taps reach into source positions ``[lo, hi]``.

    Both tap arrays are non-decreasing, so those positions are one contiguous run.
    """
    start = int(torch.searchsorted(i1, torch.tensor(lo, device=i1.device), right=False))
    end = int(torch.searchsorted(i0, torch.tensor(hi, device=i0.device), right=True))
    return start, end


def _column_runs(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of ``True`` down each column of ``block`` (columns x rows, bool, C order).

    Returns the start and end (exclusive) of every run as flat indices into ``block`` with one
    extra row per column, i.e. ``column * (rows + 1) + row``, column by column.
    """
    cols, rows = block.shape
    # a False after every column (and before the first) keeps runs inside their column, so the
    # changes of the flat sequence alternate start, end, start, end ...
    flat = np.zeros(cols * (rows + 1) + 1, dtype=bool)
    flat[1:].reshape(cols, rows + 1)[:, :rows] = block
    changes = np.flatnonzero(flat[1:] != flat[:-1])
    return changes[0::2], changes[1::2]


def _rle_from_runs(starts: np.ndarray, ends: np.ndarray, height: int, width: int) -> dict[str, object]:
    """A compressed COCO RLE (``counts`` as ``str``) from the column-major runs of ones."""
    total = height * width
    if starts.size:
        # runs in neighbouring columns that meet (a column full to the bottom, the next full from
        # the top) are one run in COCO's column-major order
        join = np.nonzero(ends[:-1] == starts[1:])[0]
        if join.size:
            keep = np.ones(starts.size, dtype=bool)
            keep[join + 1] = False
            ends = np.delete(ends, join)
            starts = starts[keep]
        counts = np.empty(2 * starts.size + 1, dtype=np.int64)
        counts[0] = starts[0]
        counts[1:-1:2] = ends - starts
        counts[2:-1:2] = starts[1:] - ends[:-1]
        counts[-1] = total - ends[-1]
        if counts[-1] == 0:
            counts = counts[:-1]
    else:
        counts = np.array([total], dtype=np.int64)
    rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()}, height, width)
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def mask_logits_to_rle(logits: torch.Tensor, height: int, width: int) -> dict[str, object]:
    """One ``(h, w)`` mask logit map -> the COCO RLE of ``resize(logits, (height, width)) > 0``.

    Parameters
    ----------
    logits:
        Low-resolution mask logits of one detection (any device, any float dtype).
    height, width:
        The image's own size.

    Returns
    -------
    dict
        ``{"size": [height, width], "counts": str}``, as ``pycocotools.mask.encode`` gives it.
    """
    m = logits.detach().float()
    h_in, w_in = m.shape
    positive = m > 0
    rows = torch.nonzero(positive.any(dim=1)).flatten()
    if rows.numel() == 0:
        return _rle_from_runs(np.empty(0, np.int64), np.empty(0, np.int64), height, width)
    cols = torch.nonzero(positive.any(dim=0)).flatten()
    yi0, yi1 = _taps(h_in, height, m.device)
    xi0, xi1 = _taps(w_in, width, m.device)
    ys, ye = _span(yi0, yi1, int(rows[0]), int(rows[-1]))
    xs, xe = _span(xi0, xi1, int(cols[0]), int(cols[-1]))
    if ys >= ye or xs >= xe:  # shrinking: the positive source pixels fall between output taps
        return _rle_from_runs(np.empty(0, np.int64), np.empty(0, np.int64), height, width)
    # Bilinear resizing is separable, and PyTorch's 2-D kernel is exactly its two 1-D passes:
    # across first (the whole mask to the output width: small), then down, a strip of output
    # columns at a time. A strip's pass down does not depend on its neighbours (its width is not
    # resized), so the strips together are bit for bit F.interpolate's full-size result.
    across = F.interpolate(m[None, None], size=(h_in, width), mode="bilinear", align_corners=False)
    step = max(1, STRIP_PIXELS // height)
    per = ye - ys + 1  # rows of a padded column in _column_runs
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    for xa in range(xs, xe, step):
        xb = min(xe, xa + step)
        strip = F.interpolate(
            across[..., xa:xb], size=(height, xb - xa), mode="bilinear", align_corners=False
        )[0, 0, ys:ye]
        block = (strip > 0).T.contiguous().cpu().numpy()  # (columns, rows): COCO's column-major order
        s0, e0 = _column_runs(block)
        # flat index in the padded block -> index in the image's column-major order
        for flat, out in ((s0, starts), (e0, ends)):
            col, row = np.divmod(flat, per)
            out.append((xa + col) * height + ys + row)
    return _rle_from_runs(np.concatenate(starts), np.concatenate(ends), height, width)


def masks_to_rles(logits: torch.Tensor, height: int, width: int) -> list[dict[str, object]]:
    """``(K, h, w)`` mask logits -> K COCO RLEs at ``height x width``, one mask at a time."""
    return [mask_logits_to_rle(logits[k], height, width) for k in range(logits.shape[0])]
