"""The one image resize/normalise step, shared by prediction and training.

SAM3 sees every image stretched to a square ``image_size`` (1008 px for the released model), scaled
to [0, 1] and normalised with mean 0.5 / std 0.5 per channel, as transformers' ``Sam3ImageProcessor``
does. Boxes in normalised coordinates are therefore the same before and after the resize, and
predicted masks and boxes map back to the image by scaling alone. Training imports this function, so
the model is trained on exactly what it will be served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

PIXEL_MEAN = 0.5
PIXEL_STD = 0.5


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check an image and return it as ``HxWx3 uint8`` (grey is repeated, an alpha channel dropped).

    Raises
    ------
    ValueError
        For arrays that are not images (wrong rank, dtype or channel count).
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {img.shape}")
    return img[:, :, :3]


def preprocess(
    images: Sequence[np.ndarray], image_size: int, *, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Resize and normalise images for SAM3.

    Parameters
    ----------
    images:
        ``HxWx3`` (or grey ``HxW``) ``uint8`` RGB arrays; sizes may differ.
    image_size:
        The model's square input size (``config.image_size``).
    device:
        Where the result goes; resizing runs there too (fast on a GPU).

    Returns
    -------
    torch.Tensor
        ``(len(images), 3, image_size, image_size)`` float32.
    """
    out = torch.empty((len(images), 3, image_size, image_size), dtype=torch.float32, device=device)
    for i, image in enumerate(images):
        img = torch.from_numpy(np.ascontiguousarray(as_rgb(image))).to(device)
        x = img.permute(2, 0, 1)[None].float()
        if x.shape[-2:] != (image_size, image_size):
            # antialias: downscaling like PIL's bilinear filter in transformers' image processor
            x = F.interpolate(
                x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
            )
        out[i] = (x[0] / 255.0 - PIXEL_MEAN) / PIXEL_STD
    return out


def normalize_boxes_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel ``xyxy`` boxes -> ``[0, 1]`` ``xyxy`` (what SAM3 predicts and is trained on)."""
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return b / np.array([width, height, width, height], dtype=np.float32)
