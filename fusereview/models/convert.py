"""Official SAM3 parameter names <-> transformers ``Sam3Model`` names, both directions.

The official image model (facebookresearch/sam3) and transformers' port hold the same weights under
different names, with four differences in layout:

* attention projections are fused in the official model (``qkv`` in the ViT, ``in_proj_weight`` /
  ``in_proj_bias`` elsewhere) and split into ``q_proj`` / ``k_proj`` / ``v_proj`` in transformers;
* the ViT's ``pos_embed`` carries a class-token row first, which transformers drops;
* CLIP's ``text_projection`` is stored as ``(in, out)`` officially, as a ``Linear`` weight
  ``(out, in)`` in transformers;
* the official model has buffers and modules transformers does not: rotary ``freqs_cis`` (recomputed
  on the fly), the point-prompt projections of the geometry encoder (SAM3's image model is
  prompted by text and boxes only) and, in ``sam3.pt`` and trainer checkpoints of the video model,
  the SAM2 neck ``backbone.vision_backbone.sam2_convs.*`` that feeds the video tracker.

The mapping works on any tensor, including ``meta`` tensors, so the full-size mapping can be checked
against a manifest of names and shapes without loading 3.4 GB of weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# (official prefix, transformers prefix); "{i}" is a layer index. The first matching rule wins, so
# longer (more specific) prefixes come before shorter ones of the same module.
_V = "backbone.vision_backbone."
_T = "backbone.language_backbone.encoder."
_TT = "text_encoder.text_model."
_RULES: list[tuple[str, str]] = [
    # ViT trunk
    (_V + "trunk.pos_embed", "vision_encoder.backbone.embeddings.position_embeddings"),
    (_V + "trunk.patch_embed.proj.", "vision_encoder.backbone.embeddings.patch_embeddings.projection."),
    (_V + "trunk.ln_pre.", "vision_encoder.backbone.layer_norm."),
    (_V + "trunk.blocks.{i}.norm1.", "vision_encoder.backbone.layers.{i}.layer_norm1."),
    (_V + "trunk.blocks.{i}.norm2.", "vision_encoder.backbone.layers.{i}.layer_norm2."),
    (_V + "trunk.blocks.{i}.attn.qkv.", "vision_encoder.backbone.layers.{i}.attention.qkv."),
    (_V + "trunk.blocks.{i}.attn.proj.", "vision_encoder.backbone.layers.{i}.attention.o_proj."),
    (_V + "trunk.blocks.{i}.mlp.", "vision_encoder.backbone.layers.{i}.mlp."),
    # FPN neck: transformers keeps a GELU between the two 4x deconvolutions (index 1 of scale_layers)
    (_V + "convs.{i}.dconv_2x2_0.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.0."),
    (_V + "convs.{i}.dconv_2x2_1.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.2."),
    (_V + "convs.{i}.dconv_2x2.", "vision_encoder.neck.fpn_layers.{i}.scale_layers.0."),
    (_V + "convs.{i}.conv_1x1.", "vision_encoder.neck.fpn_layers.{i}.proj1."),
    (_V + "convs.{i}.conv_3x3.", "vision_encoder.neck.fpn_layers.{i}.proj2."),
    # CLIP text encoder
    (_T + "token_embedding.", _TT + "embeddings.token_embedding."),
    (_T + "positional_embedding", _TT + "embeddings.position_embedding.weight"),
    (_T + "ln_final.", _TT + "final_layer_norm."),
    (_T + "text_projection", "text_encoder.text_projection.weight"),
    (_T + "transformer.resblocks.{i}.attn.in_proj_", _TT + "encoder.layers.{i}.self_attn.in_proj_"),
    (_T + "transformer.resblocks.{i}.attn.out_proj.", _TT + "encoder.layers.{i}.self_attn.out_proj."),
    (_T + "transformer.resblocks.{i}.ln_1.", _TT + "encoder.layers.{i}.layer_norm1."),
    (_T + "transformer.resblocks.{i}.ln_2.", _TT + "encoder.layers.{i}.layer_norm2."),
    (_T + "transformer.resblocks.{i}.mlp.c_fc.", _TT + "encoder.layers.{i}.mlp.fc1."),
    (_T + "transformer.resblocks.{i}.mlp.c_proj.", _TT + "encoder.layers.{i}.mlp.fc2."),
    ("backbone.language_backbone.resizer.", "text_projection."),
    # Geometry (box prompt) encoder
    ("geometry_encoder.encode.{i}.self_attn.out_proj.", "geometry_encoder.layers.{i}.self_attn.o_proj."),
    ("geometry_encoder.encode.{i}.self_attn.", "geometry_encoder.layers.{i}.self_attn."),
    (
        "geometry_encoder.encode.{i}.cross_attn_image.out_proj.",
        "geometry_encoder.layers.{i}.cross_attn.o_proj.",
    ),
    ("geometry_encoder.encode.{i}.cross_attn_image.", "geometry_encoder.layers.{i}.cross_attn."),
    ("geometry_encoder.encode.{i}.linear1.", "geometry_encoder.layers.{i}.mlp.fc1."),
    ("geometry_encoder.encode.{i}.linear2.", "geometry_encoder.layers.{i}.mlp.fc2."),
    ("geometry_encoder.encode.{i}.norm1.", "geometry_encoder.layers.{i}.layer_norm1."),
    ("geometry_encoder.encode.{i}.norm2.", "geometry_encoder.layers.{i}.layer_norm2."),
    ("geometry_encoder.encode.{i}.norm3.", "geometry_encoder.layers.{i}.layer_norm3."),
    ("geometry_encoder.encode_norm.", "geometry_encoder.output_layer_norm."),
    ("geometry_encoder.img_pre_norm.", "geometry_encoder.vision_layer_norm."),
    ("geometry_encoder.norm.", "geometry_encoder.prompt_layer_norm."),
    ("geometry_encoder.label_embed.", "geometry_encoder.label_embed."),
    ("geometry_encoder.cls_embed.", "geometry_encoder.cls_embed."),
    ("geometry_encoder.boxes_", "geometry_encoder.boxes_"),
    ("geometry_encoder.final_proj.", "geometry_encoder.final_proj."),
    # DETR encoder
    ("transformer.encoder.layers.{i}.self_attn.out_proj.", "detr_encoder.layers.{i}.self_attn.o_proj."),
    ("transformer.encoder.layers.{i}.self_attn.", "detr_encoder.layers.{i}.self_attn."),
    (
        "transformer.encoder.layers.{i}.cross_attn_image.out_proj.",
        "detr_encoder.layers.{i}.cross_attn.o_proj.",
    ),
    ("transformer.encoder.layers.{i}.cross_attn_image.", "detr_encoder.layers.{i}.cross_attn."),
    ("transformer.encoder.layers.{i}.linear1.", "detr_encoder.layers.{i}.mlp.fc1."),
    ("transformer.encoder.layers.{i}.linear2.", "detr_encoder.layers.{i}.mlp.fc2."),
    ("transformer.encoder.layers.{i}.norm1.", "detr_encoder.layers.{i}.layer_norm1."),
    ("transformer.encoder.layers.{i}.norm2.", "detr_encoder.layers.{i}.layer_norm2."),
    ("transformer.encoder.layers.{i}.norm3.", "detr_encoder.layers.{i}.layer_norm3."),
    # DETR decoder
    ("transformer.decoder.layers.{i}.self_attn.out_proj.", "detr_decoder.layers.{i}.self_attn.o_proj."),
    ("transformer.decoder.layers.{i}.self_attn.", "detr_decoder.layers.{i}.self_attn."),
    ("transformer.decoder.layers.{i}.ca_text.out_proj.", "detr_decoder.layers.{i}.text_cross_attn.o_proj."),
    ("transformer.decoder.layers.{i}.ca_text.", "detr_decoder.layers.{i}.text_cross_attn."),
    (
        "transformer.decoder.layers.{i}.cross_attn.out_proj.",
        "detr_decoder.layers.{i}.vision_cross_attn.o_proj.",
    ),
    ("transformer.decoder.layers.{i}.cross_attn.", "detr_decoder.layers.{i}.vision_cross_attn."),
    ("transformer.decoder.layers.{i}.linear1.", "detr_decoder.layers.{i}.mlp.fc1."),
    ("transformer.decoder.layers.{i}.linear2.", "detr_decoder.layers.{i}.mlp.fc2."),
    ("transformer.decoder.layers.{i}.norm1.", "detr_decoder.layers.{i}.vision_cross_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.catext_norm.", "detr_decoder.layers.{i}.text_cross_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.norm2.", "detr_decoder.layers.{i}.self_attn_layer_norm."),
    ("transformer.decoder.layers.{i}.norm3.", "detr_decoder.layers.{i}.mlp_layer_norm."),
    ("transformer.decoder.norm.", "detr_decoder.output_layer_norm."),
    ("transformer.decoder.query_embed.", "detr_decoder.query_embed."),
    ("transformer.decoder.reference_points.", "detr_decoder.reference_points."),
    ("transformer.decoder.presence_token.", "detr_decoder.presence_token."),
    ("transformer.decoder.presence_token_out_norm.", "detr_decoder.presence_layer_norm."),
]
# Official MLP heads number their layers 0, 1, 2; transformers names them layer1, layer2, layer3.
for _off, _hf, _n in [
    ("transformer.decoder.bbox_embed", "detr_decoder.box_head", 3),
    ("transformer.decoder.presence_token_head", "detr_decoder.presence_head", 3),
    ("transformer.decoder.ref_point_head", "detr_decoder.ref_point_head", 2),
    ("transformer.decoder.boxRPB_embed_x", "detr_decoder.box_rpb_embed_x", 2),
    ("transformer.decoder.boxRPB_embed_y", "detr_decoder.box_rpb_embed_y", 2),
    ("dot_prod_scoring.prompt_mlp", "dot_product_scoring.text_mlp", 2),
]:
    _RULES += [(f"{_off}.layers.{k}.", f"{_hf}.layer{k + 1}.") for k in range(_n)]
_RULES += [
    ("dot_prod_scoring.prompt_mlp.out_norm.", "dot_product_scoring.text_mlp_out_norm."),
    ("dot_prod_scoring.prompt_proj.", "dot_product_scoring.text_proj."),
    ("dot_prod_scoring.hs_proj.", "dot_product_scoring.query_proj."),
    # Mask decoder
    ("segmentation_head.pixel_decoder.", "mask_decoder.pixel_decoder."),
    ("segmentation_head.mask_predictor.mask_embed.", "mask_decoder.mask_embedder."),
    ("segmentation_head.instance_seg_head.", "mask_decoder.instance_projection."),
    ("segmentation_head.semantic_seg_head.", "mask_decoder.semantic_projection."),
    ("segmentation_head.cross_attend_prompt.out_proj.", "mask_decoder.prompt_cross_attn.o_proj."),
    ("segmentation_head.cross_attend_prompt.", "mask_decoder.prompt_cross_attn."),
    ("segmentation_head.cross_attn_norm.", "mask_decoder.prompt_cross_attn_norm."),
]

#: Official keys that have no transformers counterpart by design (dropped, not "unexpected"), with
#: the reason the load report gives for them.
SKIPPED_OFFICIAL_REASONS = [
    (re.compile(r"\.attn\.freqs_cis$"), "rotary tables (recomputed)"),
    (re.compile(r"^geometry_encoder\.points_"), "point-prompt projections (not used by text/box prompts)"),
    # the official video model's detector carries a second FPN neck (a copy of ``convs``) that
    # feeds its SAM2 tracker; the image model neither has nor needs it
    (re.compile(r"^backbone\.vision_backbone\.sam2_convs\."), "SAM2 neck of the video tracker"),
]
SKIPPED_OFFICIAL = [pattern for pattern, _ in SKIPPED_OFFICIAL_REASONS]

_POS_EMBED = "vision_encoder.backbone.embeddings.position_embeddings"
_TEXT_PROJ = "text_encoder.text_projection.weight"


def _compile(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix).replace(r"\{i\}", r"(\d+)"))


_FORWARD = [(_compile(a), b) for a, b in _RULES]
_BACKWARD = [(_compile(b), a) for a, b in _RULES]


def _rename(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in rules:
        m = pattern.match(key)
        if m:
            out = target
            for g in m.groups():
                out = out.replace("{i}", g, 1)
            return out + key[m.end() :]
    return None


def is_skipped_official(key: str) -> bool:
    """True for official keys that transformers does not need (rotary tables, point projections, SAM2 neck)."""
    return skip_reason(key) is not None


def skip_reason(key: str) -> str | None:
    """Why an official key is skipped by design, or ``None`` when it is not."""
    return next((why for pattern, why in SKIPPED_OFFICIAL_REASONS if pattern.search(key)), None)


def official_to_transformers(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Convert an official SAM3 image-model state dict (no ``detector.`` prefix) to transformers names.

    Parameters
    ----------
    state:
        Official names -> tensors (``meta`` tensors work too).

    Returns
    -------
    tuple
        The converted state dict, and the official keys that matched no rule (kept out of the
        result; the loader reports them as unexpected). Skipped keys (see :data:`SKIPPED_OFFICIAL`)
        are in neither.
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if is_skipped_official(key):
            continue
        new = _rename(key, _FORWARD)
        if new is None:
            unknown.append(key)
            continue
        if new.endswith(("attention.qkv.weight", "attention.qkv.bias")):
            # ViT: fused [q; k; v] along the output dimension
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                out[new.replace(".qkv.", f".{name}.")] = part
        elif ".in_proj_" in new:
            base, kind = new.rsplit(".in_proj_", 1)
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                out[f"{base}.{name}.{kind}"] = part
        elif new == _POS_EMBED:
            out[new] = value[:, 1:, :]  # drop the class-token row transformers does not use
        elif new == _TEXT_PROJ:
            out[new] = value.t()
        else:
            out[new] = value
    return out, unknown


def transformers_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`official_to_transformers` (used to write official-format files).

    The class-token row of ``pos_embed`` that transformers dropped is written as zeros; the skipped
    official keys (rotary tables, point projections) are not produced.

    Raises
    ------
    KeyError
        When a transformers key has no official name.
    """
    out: dict[str, torch.Tensor] = {}
    pending: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = re.match(r"^(.*)\.(q_proj|k_proj|v_proj)\.(weight|bias)$", key)
        if m:  # every q/k/v triple is fused officially
            pending.setdefault(f"{m.group(1)}|{m.group(3)}", {})[m.group(2)] = value
            continue
        old = _rename(key, _BACKWARD)
        if old is None:
            raise KeyError(f"no official name for transformers key {key!r}")
        fpn = re.match(r"^vision_encoder\.neck\.fpn_layers\.(\d+)\.scale_layers\.0\.", key)
        if fpn and f"vision_encoder.neck.fpn_layers.{fpn.group(1)}.scale_layers.2.weight" not in state:
            # A single deconvolution (2x level) is "dconv_2x2", the first of two (4x level) "dconv_2x2_0".
            old = old.replace(".dconv_2x2_0.", ".dconv_2x2.")
        if key == _POS_EMBED:
            value = torch.cat([torch.zeros_like(value[:, :1, :]), value], dim=1)
        elif key == _TEXT_PROJ:
            value = value.t()
        out[old] = value
    for slot, parts in pending.items():
        base, kind = slot.split("|")
        fused = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]], dim=0)
        if base.endswith(".attention"):
            old = _rename(f"{base}.qkv.{kind}", _BACKWARD)
        else:
            old = _rename(f"{base}.in_proj_{kind}", _BACKWARD)
        if old is None:
            raise KeyError(f"no official name for the fused projection of {base!r}")
        out[old] = fused
    return out
