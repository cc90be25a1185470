"""What every predictor offers, the prediction cache key, and device choice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from fusereview.core.errors import FusereviewError
from fusereview.core.records import Detection

__all__ = ["Detection", "DeviceError", "Predictor", "cache_key", "select_device"]


class DeviceError(FusereviewError):
    """The device asked for is not available on this machine."""


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


def cache_key(prompt: str, threshold: float) -> str:
    """The prediction cache key of a prompt and score threshold.

    Prompts are compared as the tokenizer sees them (lowercased, spaces collapsed): ``"Fuse  Neutrals"``
    and ``"fuse neutrals"`` give the same predictions, so they share cache entries.
    """
    norm = " ".join(prompt.lower().split())
    text = f"v1|{norm}|{float(threshold):.6g}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


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
