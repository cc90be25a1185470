"""What every predictor offers, the prediction cache key, and device choice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.project_predictions import category_key_prefix
from fusereview.core.records import Detection

__all__ = [
    "Detection",
    "DeviceError",
    "NonFiniteOutputError",
    "Predictor",
    "cache_key",
    "require_finite_scores",
    "select_device",
]


class DeviceError(FusereviewError):
    """The device asked for is not available on this machine."""


class NonFiniteOutputError(FusereviewError):
    """A model produced NaN or infinite scores: its run must not store (and so replace) anything."""


def require_finite_scores(out: object, source: str) -> None:
    """Raise :class:`NonFiniteOutputError` when ``out``'s logits hold NaN or infinity.

    A NaN score fails every threshold, so such a run "finds nothing" -- and storing nothing for an
    image supersedes the previous model's pending predictions. Checked on the raw logits, before
    any threshold can hide them.
    """
    import torch

    for name in ("pred_logits", "presence_logits"):
        logits = getattr(out, name, None)
        if isinstance(logits, torch.Tensor) and not bool(torch.isfinite(logits).all()):
            raise NonFiniteOutputError(
                f"{source}: the model produced NaN or infinite scores ({name}); nothing was stored "
                "and no earlier prediction was replaced (damaged weights, or a dtype the device "
                "cannot compute in)"
            )


@runtime_checkable
class Predictor(Protocol):
    """A model that finds objects of the project's categories in images.

    Attributes
    ----------
    fingerprint:
        Identifies the weights (content hash or export id): the prediction cache is keyed by it.
    device:
        ``"cuda"``, ``"mps"`` or ``"cpu"``.
    """

    fingerprint: str
    device: str

    def predict(
        self, images: list[np.ndarray], prompts: list[tuple[int, str]], *, threshold: float = 0.3
    ) -> list[list[Detection]]:
        """Detections per image for every ``(category_id, prompt)``."""
        ...

    def predict_box(
        self, image: np.ndarray, box_xyxy: Sequence[float], category_id: int, *, threshold: float = 0.3
    ) -> list[Detection]:
        """Detections inside a box the user drew."""
        ...


def cache_key(prompt: str, threshold: float, *, category_id: int | None = None) -> str:
    """The prediction cache key of a prompt and score threshold (and the category it is for).

    Prompts are compared as the tokenizer sees them (lowercased, spaces collapsed): ``"Fuse  Neutrals"``
    and ``"fuse neutrals"`` give the same predictions, so they share cache entries.

    Parameters
    ----------
    prompt, threshold:
        What the model was asked and the score cut.
    category_id:
        The category the prompt stands for. Always pass it when storing or looking up a
        project's predictions: two categories prompted with the same text must not share a key
        (storing the second would replace the first one's predictions). The key then starts with
        :func:`~fusereview.core.project_predictions.category_key_prefix` (``c<id>-``), which is
        how the project finds a category's older cache entries when a new set supersedes them.
        Without it the key is the version-1 key (prompt and threshold only), kept for callers
        that key something else than a project's per-category cache.
    """
    norm = " ".join(prompt.lower().split())
    if category_id is None:
        text = f"v1|{norm}|{float(threshold):.6g}"
        return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()
    text = f"v2|{int(category_id)}|{norm}|{float(threshold):.6g}"
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()
    return category_key_prefix(category_id) + digest


def select_device(requested: str | None = None) -> str:
    """Pick ``cuda``, then ``mps``, then ``cpu``; or check the one asked for.

    Parameters
    ----------
    requested:
        ``None`` / ``"auto"``, or ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.

    Raises
    ------
    DeviceError
        When the requested device is not available.
    """
    import torch

    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    req = str(requested)
    if req == "cpu":
        return "cpu"
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {req}: no CUDA GPU is available here (use --device cpu or auto)")
        if ":" in req:
            index = req.split(":", 1)[1]
            if not index.isdigit() or int(index) >= torch.cuda.device_count():
                raise DeviceError(
                    f"--device {req}: this machine has {torch.cuda.device_count()} CUDA device(s)"
                )
        return req
    if req == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise DeviceError("--device mps: Apple's Metal backend is not available here")
        return "mps"
    raise DeviceError(f"--device {req}: unknown device (use auto, cpu, cuda, cuda:N or mps)")
