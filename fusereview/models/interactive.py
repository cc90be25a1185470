"""Click to segment: SAM3's interactive head (transformers ``Sam3TrackerModel``) on the detector's ViT.

SAM3's checkpoint carries, beside the text-prompted detector, the SAM2-style head its tracker uses:
a prompt encoder for points, boxes and masks, a two-way mask decoder, and a second FPN neck on the
*same* ViT. :class:`InteractiveSegmenter` runs that head for one image at a time:

* **one vision pass per image**: :meth:`InteractiveSegmenter.segment` computes the image embedding
  (ViT + the head's neck) the first time it sees an image key and keeps it while the image is open;
  every further click runs only the prompt encoder and the mask decoder;
* the ViT is the detector's own module (shared, not copied): loading the head costs its ~6M
  parameters at full size, not another 450M;
* positive/negative points in image pixels and an optional box give a mask at the image's size, the
  head's predicted IoU as its score, and low-resolution logits that the next click refines.

Where the head comes from (:func:`load_interactive`): the facebook/sam3 transformers folder
(``tracker_model.*``, ``tracker_neck.*``), the official ``sam3.pt`` (``tracker.*`` and the detector's
``sam2_convs``; :func:`fusereview.models.convert.official_tracker_to_transformers`), fusereview's
export with an ``interactive/`` folder (the shipped demo model has one, trained by
:mod:`fusereview.demo.build_interactive`), and ``"tiny"`` (a seeded, untrained tiny head). A model
without one raises :class:`NoInteractiveHeadError`, which says so; a partial head is refused like a
partial detector (:class:`~fusereview.models.checkpoints.IncompleteWeightsError`).

Differences from transformers' ``Sam3TrackerModel.get_image_embeddings`` (5.x): its neck has four
levels (the detector's 4x, 2x, 1x, 0.5x), and it adds ``no_memory_embedding`` to the last one, which
the reshape then drops. The official image predictor (``SAM3InteractiveImagePredictor``) and
transformers' video model use the first three levels and add the embedding to the 1x level; so do we.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Sam3Config, Sam3TrackerConfig, Sam3TrackerModel

from fusereview.core.errors import ModelLoadError
from fusereview.models.base import select_device
from fusereview.models.checkpoints import (
    CheckpointFormatError,
    ConfigMismatchError,
    IncompleteWeightsError,
    LoadReport,
    detect_format,
    file_fingerprint,
)
from fusereview.models.preprocess import as_rgb, preprocess

#: Folder of an export (format d) that holds its interactive head.
INTERACTIVE_DIR = "interactive"
#: The head's description in that folder.
HEAD_META = "head.json"
HEAD_FORMAT = "fusereview-sam3-interactive"
#: Seed of the ``"tiny"`` spec's head (its weights are this seed's initialisation: untrained).
TINY_HEAD_SEED = 0
#: A binary mask given as the first mask prompt (refining an existing object) becomes logits of
#: this magnitude: the scale the official tracker uses to turn a mask into SAM logits (20 x mask - 10).
MASK_LOGIT = 10.0
_BACKBONE = "vision_encoder.backbone."

Point = tuple[float, float, int]
Box = tuple[float, float, float, float]


class NoInteractiveHeadError(ModelLoadError):
    """The model has no interactive (click) head: the Click tool cannot run with it."""


@dataclass(frozen=True)
class ClickResult:
    """What one click (all points so far) gives.

    Attributes
    ----------
    mask:
        COCO RLE at the image's size (``counts`` as ``str``); may be empty.
    area:
        Its pixel count.
    box:
        Its tight box ``(x0, y0, x1, y1)`` in pixels, ``None`` when the mask is empty.
    score:
        The head's predicted IoU of this mask, in [0, 1].
    object_score:
        The head's belief that there is an object at the prompt (sigmoid of its object logit).
    logits:
        The mask's low-resolution logits (``4g x 4g``, ``g`` = the patch grid): the next click's mask
        prompt.
    embedded:
        Whether this call computed the image embedding (the first click on an image) or reused it.
    seconds:
        Wall time of the call (embedding included when ``embedded``).
    """

    mask: dict[str, Any]
    area: int
    box: Box | None
    score: float
    object_score: float
    logits: np.ndarray
    embedded: bool
    seconds: float


def tracker_config_for(
    detector_config: Sam3Config, tracker: Mapping[str, Any] | None = None
) -> Sam3TrackerConfig:
    """The interactive head's config for a detector: its vision config (the ViT is shared), its widths.

    Parameters
    ----------
    detector_config:
        The detector's ``Sam3Config``.
    tracker:
        A ``tracker_config`` (e.g. from facebook/sam3's ``config.json``); its prompt encoder and mask
        decoder settings are kept, the vision config is always the detector's.

    Returns
    -------
    Sam3TrackerConfig
        At full size, exactly ``Sam3TrackerConfig()`` (facebook/sam3's); for a tiny detector, a head
        of the detector's FPN width.
    """
    vision = detector_config.vision_config
    hidden = int(vision.fpn_hidden_size)
    backbone = vision.backbone_config
    image_size, patch = int(backbone.image_size), int(backbone.patch_size)
    given = dict(tracker or {})
    prompt = dict(given.get("prompt_encoder_config") or {})
    prompt.update({"hidden_size": hidden, "image_size": image_size, "patch_size": patch})
    decoder = {
        # facebook/sam3's sizes at 256; scaled with the width below it (the tiny heads)
        "hidden_size": hidden,
        "mlp_dim": 8 * hidden,
        "num_attention_heads": 8 if hidden >= 256 else 4,
        "iou_head_hidden_dim": hidden,
        **dict(given.get("mask_decoder_config") or {}),
    }
    decoder["hidden_size"] = hidden
    sizes = [[4 * image_size // patch] * 2, [2 * image_size // patch] * 2, [image_size // patch] * 2]
    vision_dict = vision.to_dict()
    vision_dict["backbone_feature_sizes"] = sizes
    return Sam3TrackerConfig(
        vision_config=vision_dict, prompt_encoder_config=prompt, mask_decoder_config=decoder
    )


def build_head(config: Sam3TrackerConfig, backbone: torch.nn.Module) -> Sam3TrackerModel:
    """A ``Sam3TrackerModel`` whose ViT *is* ``backbone``; its own parameters allocated, not initialised.

    The model is built on the ``meta`` device (no 450M-parameter ViT allocated only to be thrown
    away), the detector's ViT put in, and the rest allocated empty: every one of those tensors must
    then come from a file (:func:`apply_head_state` refuses a head with any missing).
    """
    with torch.device("meta"):
        head = Sam3TrackerModel(config)
    head.vision_encoder.backbone = torch.nn.Module()  # keep to_empty off the real ViT
    head.to_empty(device="cpu")
    head.vision_encoder.backbone = backbone
    return head.eval()


def head_state_names(head: Sam3TrackerModel) -> dict[str, torch.Tensor]:
    """The head's own tensors (``state_dict`` without the shared ViT)."""
    return {k: v for k, v in head.state_dict().items() if not k.startswith(_BACKBONE)}


def apply_head_state(
    head: Sam3TrackerModel, state: Mapping[str, torch.Tensor], *, source: str, fmt: str, skipped: int = 0
) -> LoadReport:
    """Copy ``state`` (``Sam3TrackerModel`` names, no ViT) into ``head``; report what was loaded.

    Raises
    ------
    ConfigMismatchError
        When a tensor's shape differs from the head's config.
    """
    own = head_state_names(head)
    for k, v in state.items():
        if k in own and tuple(v.shape) != tuple(own[k].shape):
            raise ConfigMismatchError(
                f"{source}: interactive head: {k} has shape {tuple(v.shape)} in the file but "
                f"{tuple(own[k].shape)} in the model"
            )
    matched = {k: v for k, v in state.items() if k in own}
    head.load_state_dict(matched, strict=False)
    return LoadReport(
        source=f"{source} (interactive head)",
        format=fmt,
        loaded=len(matched),
        missing=sorted(set(own) - set(matched)),
        unexpected=sorted(set(state) - set(own)),
        skipped=skipped,
    )


def tiny_interactive_head(detector: torch.nn.Module, seed: int = TINY_HEAD_SEED) -> Sam3TrackerModel:
    """A seeded tiny head on a (tiny) detector's ViT: untrained, the same weights for the same seed."""
    from fusereview.models.tiny import MODEL_BUILD_LOCK

    config = tracker_config_for(detector.config)
    with MODEL_BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Sam3TrackerModel(config)
    # One positional matrix as in the official model (transformers keeps two copies of it).
    with torch.no_grad():
        head.shared_image_embedding.positional_embedding.copy_(
            head.prompt_encoder.shared_embedding.positional_embedding
        )
    head.vision_encoder.backbone = detector.vision_encoder.backbone
    return head.eval()


# ---------------------------------------------------------------------------- the segmenter


class InteractiveSegmenter:
    """Click-to-segment on one image at a time; safe to call from one worker thread at a time.

    Parameters
    ----------
    head:
        A ``Sam3TrackerModel`` sharing the detector's ViT.
    fingerprint:
        Identifies detector + head (recorded with what the tool makes).
    report:
        The head's load report (a head with missing weights never segments).
    device:
        ``None``/``"auto"`` or an explicit device (normally the detector's).
    meta:
        The head's description (``head.json`` of an export: how it was trained, what it scores).
    """

    def __init__(
        self,
        head: Sam3TrackerModel,
        *,
        fingerprint: str,
        report: LoadReport,
        device: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if not report.complete:
            raise IncompleteWeightsError(report.refusal())
        self.head = head
        self.fingerprint = fingerprint
        self.report = report
        self.meta = dict(meta or {})
        self.device = select_device(device)
        self.head.to(self.device).eval()
        cfg = head.config.prompt_encoder_config
        self.image_size = int(cfg.image_size)
        self.grid = self.image_size // int(cfg.patch_size)
        self._lock = threading.RLock()
        # (image key, image (height, width), embeddings): the image open in the tool.
        self._cache: tuple[str, tuple[int, int], list[torch.Tensor]] | None = None

    # ------------------------------------------------------------------ embedding
    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        with self._lock, torch.inference_mode(), self._autocast():
            yield

    def _embed(self, rgb: np.ndarray) -> list[torch.Tensor]:
        """ViT + the head's neck: three levels (4x, 2x, 1x) as the mask decoder reads them."""
        pixels = preprocess([rgb], self.image_size, device=self.device)
        vision = self.head.vision_encoder(pixel_values=pixels)
        feats = list(vision.fpn_hidden_states[:-1])  # the 0.5x level is the detector's, not SAM's
        decoder = self.head.mask_decoder
        feats[0] = decoder.conv_s0(feats[0])
        feats[1] = decoder.conv_s1(feats[1])
        feats[-1] = feats[-1] + self.head.no_memory_embedding.reshape(1, -1, 1, 1)
        return feats

    @property
    def cached_key(self) -> str | None:
        """Key of the image whose embedding is held (``None``: none)."""
        return None if self._cache is None else self._cache[0]

    def forget(self) -> None:
        """Drop the held embedding (the image was closed)."""
        with self._lock:
            self._cache = None

    def embed(self, key: str, image: np.ndarray | Callable[[], np.ndarray]) -> bool:
        """Make sure the embedding of image ``key`` is held; returns whether it had to be computed.

        ``image`` may be a callable that loads it: it is called only when the embedding is missing.
        """
        with self._session():
            if self._cache is not None and self._cache[0] == key:
                return False
            rgb = as_rgb(image() if callable(image) else image)
            feats = self._embed(rgb)
            self._cache = (key, (rgb.shape[0], rgb.shape[1]), feats)
            return True

    # ------------------------------------------------------------------ clicks
    def segment(
        self,
        key: str,
        image: np.ndarray | Callable[[], np.ndarray],
        points: Sequence[Point],
        *,
        box: Sequence[float] | None = None,
        mask_logits: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> ClickResult:
        """The mask for positive/negative points (and a box) on image ``key``.

        Parameters
        ----------
        key:
            Identifies the image (same key: the held embedding is reused).
        image:
            ``HxWx3 uint8`` RGB, or a callable returning it (called only for a new key).
        points:
            ``(x, y, label)`` in image pixels (continuous coordinates: pixel ``i`` spans ``[i, i+1)``);
            label 1 = object, 0 = background.
        box:
            Optional ``(x0, y0, x1, y1)`` box prompt in pixels.
        mask_logits:
            The previous click's :attr:`ClickResult.logits` (refines it).
        mask:
            A bool ``HxW`` mask to refine when there are no logits yet (an existing object).

        Raises
        ------
        ValueError
            No point and no box, a label other than 0/1, or coordinates that are not finite.
        """
        pts = [(float(x), float(y), int(label)) for x, y, label in points]
        if not pts and box is None:
            raise ValueError("segment: give at least one point or a box")
        if any(label not in (0, 1) for *_, label in pts):
            raise ValueError("segment: point labels are 1 (object) or 0 (background)")
        if not all(np.isfinite([*(v for p in pts for v in p[:2]), *(box or ())])):
            raise ValueError("segment: point and box coordinates must be finite numbers")
        start = time.perf_counter()
        # one lock from the embedding to the mask: another thread (a label-box check beside a
        # click) could otherwise put its own image's embedding in the one-image cache in between
        with self._session():
            embedded = self.embed(key, image)
            assert self._cache is not None
            _, (height, width), feats = self._cache
            sx, sy = self.image_size / width, self.image_size / height
            kwargs: dict[str, Any] = {}
            if pts:
                # The prompt encoder adds half a pixel (SAM's pixel-centre convention): take it off
                # so that a continuous position lands where it was clicked.
                xy = torch.tensor([[[[x * sx - 0.5, y * sy - 0.5] for x, y, _ in pts]]], dtype=torch.float32)
                kwargs["input_points"] = xy.to(self.device)
                kwargs["input_labels"] = torch.tensor([[[lab for *_, lab in pts]]], device=self.device)
            if box is not None:
                x0, y0, x1, y1 = (float(v) for v in box)
                scaled = [
                    min(x0, x1) * sx - 0.5,
                    min(y0, y1) * sy - 0.5,
                    max(x0, x1) * sx - 0.5,
                    max(y0, y1) * sy - 0.5,
                ]
                kwargs["input_boxes"] = torch.tensor([[scaled]], dtype=torch.float32, device=self.device)
            prompt_mask = self._mask_prompt(mask_logits, mask)
            if prompt_mask is not None:
                kwargs["input_masks"] = prompt_mask
            # SAM's rule: one click alone is ambiguous (part or whole?): three candidates, best by
            # predicted IoU; with more prompts one mask (falling back to the best candidate when unstable).
            multimask = len(pts) == 1 and box is None and prompt_mask is None
            out = self.head(image_embeddings=feats, multimask_output=multimask, **kwargs)
            ious = out.iou_scores[0, 0].float()
            best = int(torch.argmax(ious))
            low = out.pred_masks[0, 0, best].float()
            full = F.interpolate(low[None, None], size=(height, width), mode="bilinear", align_corners=False)[
                0, 0
            ]
            binary = (full > 0).cpu().numpy()
            object_score = float(torch.sigmoid(out.object_score_logits[0, 0].float().flatten()[0]))
            score = float(ious[best].clamp(0.0, 1.0))
            logits = low.cpu().numpy().astype(np.float32)
        from fusereview.core.geometry import mask_to_rle

        ys, xs = np.nonzero(binary)
        box_px = (
            None
            if len(xs) == 0
            else (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        )
        return ClickResult(
            mask=mask_to_rle(binary),
            area=len(xs),
            box=box_px,
            score=score,
            object_score=object_score,
            logits=logits,
            embedded=embedded,
            seconds=time.perf_counter() - start,
        )

    def _mask_prompt(self, logits: np.ndarray | None, mask: np.ndarray | None) -> torch.Tensor | None:
        size = 4 * self.grid
        if logits is not None:
            t = torch.as_tensor(np.asarray(logits, dtype=np.float32))
            if t.shape != (size, size):
                raise ValueError(f"segment: mask_logits must be {size}x{size}, got {tuple(t.shape)}")
            return t[None, None].to(self.device)
        if mask is not None:
            m = torch.as_tensor(np.asarray(mask, dtype=np.float32))[None, None]
            small = F.interpolate(m, size=(size, size), mode="area")
            return ((small > 0.5).float() * 2 * MASK_LOGIT - MASK_LOGIT).to(self.device)
        return None


# ---------------------------------------------------------------------------- loading


def _detector_parts(detector: Any) -> tuple[torch.nn.Module, str, str | None]:
    """(model, fingerprint, device) of a LoadedModel or a Sam3Predictor."""
    model = getattr(detector, "model", None)
    fingerprint = getattr(detector, "fingerprint", None)
    if model is None or fingerprint is None or not hasattr(model, "vision_encoder"):
        raise TypeError("load_interactive: pass the loaded detector (a LoadedModel or a Sam3Predictor)")
    return model, str(fingerprint), getattr(detector, "device", None)


def _no_head(spec: str | Path, why: str) -> NoInteractiveHeadError:
    return NoInteractiveHeadError(
        f"{spec}: no interactive head ({why}); the Click tool needs SAM3's tracker weights "
        "(the facebook/sam3 folder or sam3.pt carry them)"
    )


def _folder_tracker_config(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("tracker_config"), dict):
        return data["tracker_config"]
    return None


def _read_safetensors_keys(path: Path, keys: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Read only ``keys`` (file name -> model name) of a safetensors file."""
    from safetensors import SafetensorError, safe_open

    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            present = set(fh.keys())
            for file_key, name in keys.items():
                if file_key in present:
                    out[name] = fh.get_tensor(file_key)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointFormatError(
            f"{path}: not a readable safetensors file (truncated or damaged?): {exc}"
        ) from exc
    return out


def _safetensors_keys(path: Path) -> list[str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return list(fh.keys())
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise CheckpointFormatError(
            f"{path}: not a readable safetensors file (truncated or damaged?): {exc}"
        ) from exc


def _check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointFormatError(f"{source}: interactive head: {k} holds NaN or infinite values")


def _from_transformers_folder(path: Path, model: torch.nn.Module) -> tuple[Sam3TrackerModel, LoadReport, str]:
    from fusereview.models.convert import hf_folder_tracker_names

    weights = sorted(path.glob("model*.safetensors"))
    if not weights:
        raise CheckpointFormatError(f"{path}: no model.safetensors in the model folder")
    state: dict[str, torch.Tensor] = {}
    skipped = 0
    for w in weights:
        names, n_skip = hf_folder_tracker_names(_safetensors_keys(w))
        skipped += n_skip
        state.update(_read_safetensors_keys(w, names))
    if not state:
        raise _no_head(path, "no tracker_model.* / tracker_neck.* weights: a detector-only model")
    _check_finite(state, str(path))
    head = build_head(
        tracker_config_for(model.config, _folder_tracker_config(path)), model.vision_encoder.backbone
    )
    report = apply_head_state(head, state, source=str(path), fmt="transformers", skipped=skipped)
    return head, report, file_fingerprint(*weights)


def _from_torch_file(path: Path, model: torch.nn.Module) -> tuple[Sam3TrackerModel, LoadReport, str]:
    from collections.abc import Mapping as _Mapping

    from fusereview.models.checkpoints import _torch_load
    from fusereview.models.convert import is_tracker_key, official_tracker_to_transformers

    obj = _torch_load(path)
    if isinstance(obj, _Mapping):
        for key in ("model", "model_state_dict", "state_dict"):
            inner = obj.get(key)
            if (
                isinstance(inner, _Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                obj = inner
                break
    if not isinstance(obj, _Mapping):
        raise CheckpointFormatError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    if not any(is_tracker_key(k) for k in state):
        raise _no_head(path, "no tracker.* weights: a detector-only checkpoint")
    converted, unknown, skipped = official_tracker_to_transformers(state)
    _check_finite(converted, str(path))
    head = build_head(tracker_config_for(model.config), model.vision_encoder.backbone)
    report = apply_head_state(head, converted, source=str(path), fmt="official", skipped=skipped)
    report.unexpected = sorted(set(report.unexpected) | set(unknown))
    return head, report, file_fingerprint(path)


def _from_export(
    path: Path, model: torch.nn.Module, fingerprint: str
) -> tuple[Sam3TrackerModel, LoadReport, str, dict[str, Any]]:
    folder = path / INTERACTIVE_DIR
    if not folder.is_dir():
        raise _no_head(path, f"the export has no {INTERACTIVE_DIR}/ folder: a detector-only export")
    meta_path, weights, cfg_path = folder / HEAD_META, folder / "model.safetensors", folder / "config.json"
    for f in (meta_path, weights, cfg_path):
        if not f.is_file():
            raise CheckpointFormatError(f"{folder}: {f.name} is missing from the interactive head")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFormatError(
            f"{folder}: cannot read the interactive head's description ({exc})"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
        raise CheckpointFormatError(
            f"{meta_path}: format is {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {HEAD_FORMAT!r}"
        )
    base = meta.get("base_fingerprint")
    if base and base != fingerprint:
        # a head reads the ViT features it was trained on; another model's would give nonsense
        raise _no_head(path, f"{meta_path} belongs to model {base}, this model is {fingerprint}")
    if not isinstance(cfg, dict):
        raise CheckpointFormatError(f"{cfg_path}: must be a JSON object")
    state = _read_safetensors_keys(weights, {k: k for k in _safetensors_keys(weights)})
    _check_finite(state, str(folder))
    tracker = {k: cfg.get(k) for k in ("prompt_encoder_config", "mask_decoder_config")}
    head = build_head(tracker_config_for(model.config, tracker), model.vision_encoder.backbone)
    report = apply_head_state(head, state, source=str(path), fmt="export")
    return head, report, file_fingerprint(weights), meta


def load_interactive(spec: str | Path, detector: Any, *, device: str | None = None) -> InteractiveSegmenter:
    """Load the interactive head that goes with a loaded detector, offline.

    Parameters
    ----------
    spec:
        The spec the detector was loaded from (``"tiny"``, a transformers folder, ``sam3.pt``, a
        trainer checkpoint, an export folder).
    detector:
        The loaded detector (``LoadedModel`` or ``Sam3Predictor``): its ViT is shared.
    device:
        Default: the detector's.

    Raises
    ------
    NoInteractiveHeadError
        The model has none (a detector-only export or checkpoint): the message says so.
    CheckpointFormatError, ConfigMismatchError
        A damaged head, or one that does not fit the detector.
    IncompleteWeightsError
        Some of the head's tensors are not in the file.
    """
    model, fingerprint, det_device = _detector_parts(detector)
    fmt = detect_format(spec)
    meta: dict[str, Any] = {}
    if fmt == "tiny":
        head = tiny_interactive_head(model)
        n = len(head_state_names(head))
        report = LoadReport("tiny (interactive head)", "tiny", loaded=n)  # seeded: every tensor is "loaded"
        head_fp = f"tiny-head:{TINY_HEAD_SEED}"
        meta = {
            "trained": False,
            "note": "seeded, untrained tiny head: its masks are noise (code paths only)",
        }
    elif fmt == "transformers":
        head, report, head_fp = _from_transformers_folder(Path(spec), model)
    elif fmt == "export":
        head, report, head_fp, meta = _from_export(Path(spec), model, fingerprint)
    else:
        head, report, head_fp = _from_torch_file(Path(spec), model)
    if not report.complete:  # the same refusal as the detector's: never a silently random head
        raise IncompleteWeightsError(report.refusal())
    return InteractiveSegmenter(
        head, fingerprint=f"{fingerprint}+{head_fp}", report=report, device=device or det_device, meta=meta
    )


def save_interactive_head(
    export_dir: str | Path,
    head: Sam3TrackerModel,
    *,
    base_fingerprint: str,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``head`` into an export folder as ``interactive/`` (atomically; an old one is replaced).

    ``base_fingerprint`` is the detector's (``export:<id>``): the head is loaded only with that model,
    whose ViT features it was trained on.
    """
    from safetensors.torch import save_file

    from fusereview.core.files import replace_dir

    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise FileNotFoundError(f"{export_dir}: no such export folder")
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head_state_names(head).items()}
    cfg = head.config.to_dict()
    cfg.pop("vision_config", None)  # the detector's (shared ViT): never a second copy to disagree with
    description = {
        "format": HEAD_FORMAT,
        "version": 1,
        "base_fingerprint": base_fingerprint,
        **dict(meta or {}),
    }
    target = export_dir / INTERACTIVE_DIR
    tmp = Path(tempfile.mkdtemp(dir=export_dir, prefix=f".{INTERACTIVE_DIR}.", suffix=".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2, default=str), encoding="utf-8")
        (tmp / HEAD_META).write_text(json.dumps(description, indent=2, default=str), encoding="utf-8")
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
