"""``Sam3Predictor``: SAM3 (transformers ``Sam3Model``) as a :class:`~fusereview.models.base.Predictor`.

One call of :meth:`Sam3Predictor.predict` runs the vision encoder once per image and the text
encoder once per prompt, then the prompt-dependent heads (DETR encoder/decoder, mask decoder) once
per prompt over the whole batch, reusing the image features. Scores are
``sigmoid(pred_logits) * sigmoid(presence_logits)``, as in SAM3's own post-processing.

Parity with the official model: transformers' text-only path skips the geometry encoder, so the
prompt the DETR heads see lacks the geometry encoder's CLS token that the official model always
appends. We pass one padded dummy box (label ``-10``, masked out): the geometry encoder then runs,
contributes exactly its CLS token, and the outputs match the official implementation.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fusereview.core.records import Detection
from fusereview.models.base import require_finite_scores, select_device
from fusereview.models.checkpoints import IncompleteWeightsError, LoadedModel, LoadReport, load_model
from fusereview.models.masks import masks_to_rles
from fusereview.models.preprocess import as_rgb, preprocess
from fusereview.models.tokenizer import PromptTokenizer

#: Label of a padding box in transformers' Sam3Model (masked out of attention).
PAD_BOX_LABEL = -10
#: Text prompt SAM3 uses for a box-only (visual exemplar) query.
VISUAL_PROMPT = "visual"


def detections_from_outputs(
    out: object, sizes: Sequence[tuple[int, int]], threshold: float, category_id: int, prompt: str
) -> list[list[Detection]]:
    """Threshold, scale boxes to pixels, resize masks to each image's own size, encode RLE.

    Masks are resized and encoded one detection at a time (:mod:`fusereview.models.masks`).

    ``out`` has ``pred_logits``, ``presence_logits`` (or ``None``), ``pred_boxes`` (normalised
    xyxy) and ``pred_masks`` (``None``: detections without masks) as ``Sam3Model`` returns them.
    The score is SAM3's post-processor's: ``sigmoid(pred_logits) * sigmoid(presence_logits)``.
    Prediction and training's validation both go through here, so they score the same way.
    """
    scores = out.pred_logits.float().sigmoid()  # type: ignore[attr-defined]
    presence = out.presence_logits  # type: ignore[attr-defined]
    if presence is not None:
        scores = scores * presence.float().sigmoid()
    boxes = out.pred_boxes.float().clamp(0.0, 1.0)  # type: ignore[attr-defined]
    masks = out.pred_masks  # type: ignore[attr-defined]
    result: list[list[Detection]] = []
    for b, (height, width) in enumerate(sizes):
        keep = torch.nonzero(scores[b] > threshold).flatten()
        keep = keep[torch.argsort(scores[b, keep], descending=True)]
        dets: list[Detection] = []
        if len(keep):
            scale = torch.tensor([width, height, width, height], device=boxes.device, dtype=torch.float32)
            px = (boxes[b, keep] * scale).cpu().numpy()
            rles: list[dict[str, object] | None] = [None] * len(keep)
            if masks is not None:
                # one detection at a time, only where its mask can be positive: memory stays a few
                # MB per detection on a 24-megapixel photo (was K full-size float32 masks at once)
                rles = masks_to_rles(masks[b, keep], height, width)  # type: ignore[assignment]
            sc = scores[b, keep].cpu().numpy()
            for k in range(len(keep)):
                x0, y0, x1, y1 = (float(v) for v in px[k])
                dets.append(
                    Detection(
                        box=(x0, y0, max(x0, x1), max(y0, y1)),
                        score=float(min(1.0, max(0.0, sc[k]))),
                        mask=rles[k],
                        category_id=int(category_id),
                        prompt=prompt,
                    )
                )
        result.append(dets)
    return result


class Sam3Predictor:
    """Predict with a loaded SAM3 model; safe to call from one worker thread at a time.

    Parameters
    ----------
    loaded:
        The model, tokenizer, fingerprint and load report (from :func:`load_model`).
    device:
        ``None``/``"auto"`` (cuda, then mps, then cpu) or an explicit device.
    compile:
        Compile the vision encoder with ``torch.compile`` (optional fast path; first call is slow).

    Attributes
    ----------
    fingerprint, device, report, meta:
        As loaded; ``meta`` is the export's ``fusereview.json`` (or ``{}``).
    """

    def __init__(self, loaded: LoadedModel, *, device: str | None = None, compile: bool = False) -> None:
        self.model = loaded.model
        self.tokenizer: PromptTokenizer = loaded.tokenizer
        self.fingerprint: str = loaded.fingerprint
        self.report: LoadReport = loaded.report
        self.meta = dict(loaded.meta)
        self.device: str = select_device(device)
        # Weights may come in any dtype (a bf16 transformers folder): they are kept in float32 and
        # the device's compute dtype comes from _autocast (bf16 on CUDA), so inputs always match.
        self.model.to(device=self.device, dtype=torch.float32).eval()
        self.image_size = int(self.model.config.image_size)
        self._lock = threading.RLock()
        self._vision = self.model.get_vision_features
        if compile:
            self._vision = torch.compile(self.model.get_vision_features)
        # (image digest, features) of the last image predict_box saw: the refine tool draws many boxes
        # on one image, and the vision encoder is most of the cost.
        self._box_cache: tuple[str, object] | None = None

    # ------------------------------------------------------------------ helpers
    def _check_complete(self) -> None:
        if not self.report.complete:
            raise IncompleteWeightsError(self.report.refusal())

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()  # float32 on CPU and MPS

    def _text(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer.encode(list(prompts))
        ids, mask = ids.to(self.device), mask.to(self.device)
        feats = self.model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output
        return feats, mask

    def _heads(
        self,
        vision: object,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        boxes: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> object:
        """Run the prompt-dependent heads; ``text`` is (1, L, H), broadcast over the image batch."""
        batch = vision.fpn_hidden_states[0].shape[0]  # type: ignore[attr-defined]
        if boxes is None:
            # One padded dummy box restores the geometry CLS token of the official model (see module doc).
            boxes = torch.zeros((batch, 1, 4), device=self.device)
            labels = torch.full((batch, 1), PAD_BOX_LABEL, dtype=torch.long, device=self.device)
        return self.model(
            vision_embeds=vision,
            text_embeds=BaseModelOutputWithPooling(pooler_output=text.expand(batch, -1, -1)),
            attention_mask=text_mask.expand(batch, -1),
            input_boxes=boxes,
            input_boxes_labels=labels,
        )

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        with self._lock, torch.inference_mode(), self._autocast():
            yield

    # ------------------------------------------------------------------ API
    def predict(
        self, images: list[np.ndarray], prompts: list[tuple[int, str]], *, threshold: float = 0.3
    ) -> list[list[Detection]]:
        """Find the objects of every prompt in every image.

        Parameters
        ----------
        images:
            ``HxWx3 uint8`` RGB arrays (sizes may differ; each gets masks at its own size).
        prompts:
            ``(category_id, prompt text)`` pairs.
        threshold:
            Keep detections scoring above this.

        Returns
        -------
        list of list of Detection
            Per image, the detections of all prompts (prompt order, then score descending).

        Raises
        ------
        IncompleteWeightsError
            When the model was not loaded completely.
        """
        self._check_complete()
        if not images:
            return []
        rgb = [as_rgb(im) for im in images]
        sizes = [(im.shape[0], im.shape[1]) for im in rgb]
        per_image: list[list[Detection]] = [[] for _ in rgb]
        if not prompts:
            return per_image
        with self._session():
            pixels = preprocess(rgb, self.image_size, device=self.device)
            vision = self._vision(pixel_values=pixels)
            text, text_mask = self._text([p for _, p in prompts])
            for j, (category_id, prompt) in enumerate(prompts):
                out = self._heads(vision, text[j : j + 1], text_mask[j : j + 1])
                require_finite_scores(out, self.fingerprint)
                for i, dets in enumerate(detections_from_outputs(out, sizes, threshold, category_id, prompt)):
                    per_image[i].extend(dets)
        return per_image

    def predict_box(
        self,
        image: np.ndarray,
        box_xyxy: Sequence[float],
        category_id: int,
        *,
        threshold: float = 0.3,
        prompt: str = VISUAL_PROMPT,
        min_inside: float = 0.5,
    ) -> list[Detection]:
        """The objects SAM3 finds inside a box the user drew (the refine tool).

        The box is a positive visual exemplar; of what SAM3 then finds, the detections whose box lies
        at least ``min_inside`` inside the drawn box are returned, best first.

        Parameters
        ----------
        image:
            ``HxWx3 uint8`` RGB.
        box_xyxy:
            The drawn box in image pixels.
        category_id:
            Category given to the detections.
        threshold:
            Score threshold.
        prompt:
            Text that goes with the box (SAM3 uses ``"visual"`` for a box alone; a category prompt
            narrows the search).
        min_inside:
            Fraction of a detection's box area that must lie inside the drawn box.
        """
        self._check_complete()
        rgb = as_rgb(image)
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box_xyxy)
        x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
        y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            return []
        cxcywh = [(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height]
        digest = hashlib.blake2b(rgb.tobytes(), digest_size=16).hexdigest() + str(rgb.shape)
        with self._session():
            if self._box_cache is not None and self._box_cache[0] == digest:
                vision = self._box_cache[1]
            else:
                vision = self._vision(pixel_values=preprocess([rgb], self.image_size, device=self.device))
                self._box_cache = (digest, vision)
            text, text_mask = self._text([prompt])
            boxes = torch.tensor([[cxcywh]], dtype=torch.float32, device=self.device)
            labels = torch.ones((1, 1), dtype=torch.long, device=self.device)
            out = self._heads(vision, text, text_mask, boxes, labels)
            require_finite_scores(out, self.fingerprint)
            dets = detections_from_outputs(out, [(height, width)], threshold, category_id, prompt)[0]
        inside = []
        for d in dets:
            bx0, by0, bx1, by1 = d.box
            area = max(bx1 - bx0, 0.0) * max(by1 - by0, 0.0)
            ix = max(0.0, min(bx1, x1) - max(bx0, x0)) * max(0.0, min(by1, y1) - max(by0, y0))
            if area > 0 and ix / area >= min_inside:
                inside.append(d)
        return inside


def load_predictor(
    spec: str | Path,
    *,
    device: str | None = None,
    tokenizer: str | Path | None = None,
    config: str | Path | None = None,
    compile: bool = False,
) -> Sam3Predictor:
    """Load a model (any format, offline) and wrap it as a predictor.

    Parameters
    ----------
    spec:
        ``"tiny"``, a transformers folder, ``sam3.pt``, a trainer ``checkpoint.pt`` or an export folder.
    device:
        ``None``/``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    tokenizer:
        A tokenizer file or folder (needed for a bare ``.pt`` with none beside it).
    config:
        ``config.json`` for a ``.pt`` file.
    compile:
        Use ``torch.compile`` on the vision encoder.

    Raises
    ------
    fusereview.core.errors.ModelLoadError
        Bad or incomplete checkpoint, missing tokenizer (the message says which file and where to get it).
    """
    return Sam3Predictor(load_model(spec, tokenizer=tokenizer, config=config), device=device, compile=compile)
