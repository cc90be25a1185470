"""Tiny SAM3 checkpoints *with* an interactive head, in the formats that carry one.

Everything comes from the seeded tiny model and the seeded tiny head
(:func:`fusereview.models.interactive.tiny_interactive_head`); the official and transformers layouts
are written through the inverse name mappings, with the video-memory keys real files carry.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from fusereview.models.convert import transformers_to_official, transformers_tracker_to_official
from fusereview.models.interactive import head_state_names, tiny_interactive_head, tracker_config_for
from fusereview.models.tiny import tiny_model, tiny_tokenizer


def tiny_pair(seed: int = 0):
    """The seeded tiny detector and its seeded tiny head (sharing the ViT)."""
    model = tiny_model(seed)
    return model, tiny_interactive_head(model, seed=seed)


def memory_extras() -> dict[str, torch.Tensor]:
    """A few of the official tracker's video-memory keys (dropped by design)."""
    return {
        "tracker.maskmem_tpos_enc": torch.zeros(7, 1, 1, 16),
        "tracker.no_obj_ptr": torch.zeros(1, 64),
        "tracker.maskmem_backbone.mask_downsampler.encoder.0.weight": torch.zeros(4, 1, 3, 3),
        "tracker.transformer.encoder.layers.0.self_attn.q_proj.weight": torch.zeros(64, 64),
    }


def write_official_pt_with_head(out_dir: Path, *, seed: int = 0, drop: str | None = None) -> Path:
    """``sam3.pt`` with ``detector.*`` and the head's ``tracker.*`` / ``sam2_convs`` keys (official names).

    ``drop``: an official head key to leave out (a partial head).
    """
    model, head = tiny_pair(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {"detector." + k: v for k, v in transformers_to_official(model.state_dict()).items()}
    tracker = transformers_tracker_to_official(head_state_names(head))
    if drop is not None:
        del tracker[drop]
    state.update(tracker)
    state.update(memory_extras())
    torch.save(state, out_dir / "sam3.pt")
    model.config.save_pretrained(str(out_dir))
    tiny_tokenizer().save(out_dir)
    return out_dir / "sam3.pt"


def write_transformers_folder_with_head(out: Path, *, seed: int = 0) -> Path:
    """The facebook/sam3 layout: a ``sam3_video`` config and ``detector_model.`` / ``tracker_model.`` /
    ``tracker_neck.`` weights, as transformers' ``Sam3TrackerModel.from_pretrained`` reads them."""
    from transformers import Sam3VideoConfig

    model, head = tiny_pair(seed)
    out.mkdir(parents=True, exist_ok=True)
    cfg = Sam3VideoConfig(
        detector_config=model.config.to_dict(), tracker_config=tracker_config_for(model.config).to_dict()
    )
    cfg.save_pretrained(str(out))
    state = {"detector_model." + k: v.contiguous() for k, v in model.state_dict().items()}
    for k, v in head_state_names(head).items():
        if k.startswith("vision_encoder.neck."):
            state["tracker_neck." + k[len("vision_encoder.neck.") :]] = v.contiguous()
        else:
            state["tracker_model." + k] = v.contiguous()
    state["tracker_model.memory_encoder.projection.weight"] = torch.zeros(2, 2)
    save_file(state, str(out / "model.safetensors"))
    tiny_tokenizer().save(out)
    return out
