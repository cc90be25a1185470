"""Load a SAM3 model from any of the four checkpoint formats, offline, and say what was loaded.

Formats (see :func:`detect_format`):

``tiny``
    The seeded tiny model (:mod:`fusereview.models.tiny`); nothing is read from disk.
``transformers``
    A folder in the facebook/sam3 layout: ``config.json``, ``model.safetensors`` (keys may carry
    ``detector_model.``; tracker keys are ignored), tokenizer files.
``official``
    The official ``sam3.pt``: a state dict with the image model under ``detector.`` (official names).
``trainer``
    The official trainer's ``checkpoint.pt``: weights under ``model`` or ``model_state_dict``, with or
    without ``detector.`` and DDP's ``module.``, next to optimizer state.
``export``
    fusereview's own export folder (:mod:`fusereview.models.export`): ``model.safetensors`` +
    ``config.json`` + ``tokenizer.json`` + ``fusereview.json``, possibly only the trained parameters on
    top of a named base checkpoint.

Pickles are read with ``torch.load(weights_only=True)`` only. Every load ends with a
:class:`LoadReport`; a model with any parameter not loaded from the file is refused
(:class:`IncompleteWeightsError`): a silently random model is the worst failure this tool can have.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import pickle
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import Sam3Config, Sam3Model

from fusereview.core.errors import ModelLoadError
from fusereview.models.convert import official_to_transformers, skip_reason
from fusereview.models.tokenizer import (
    OFFICIAL_BPE_NAME,
    WHERE_TO_GET,
    PromptTokenizer,
    TokenizerError,
    load_tokenizer_file,
    load_tokenizer_folder,
)

EXPORT_META = "fusereview.json"
EXPORT_FORMAT = "fusereview-sam3"
# Keys of other models that share a file with the image model (the video tracker); never "unexpected".
_OTHER_MODEL_PREFIXES = ("tracker.", "tracker_model.", "tracker_neck.", "sam2_predictor.")


class CheckpointFormatError(ModelLoadError):
    """The file is not a SAM3 checkpoint of a known format, or is damaged."""


class IncompleteWeightsError(ModelLoadError):
    """Some parameters of the model were not in the checkpoint; the model must not predict."""


class ConfigMismatchError(ModelLoadError):
    """The weights' shapes do not fit the model config."""


@dataclass
class LoadReport:
    """What a load took from the file.

    Attributes
    ----------
    source:
        The spec or path loaded.
    format:
        One of ``tiny``, ``transformers``, ``official``, ``trainer``, ``export``.
    loaded:
        Number of model tensors filled from the file.
    missing:
        Model tensors the file did not provide (left at random initialisation).
    unexpected:
        File tensors the model has no place for (ignored).
    skipped:
        File tensors dropped by design (rotary tables, point projections, the video model's SAM2
        neck and tracker weights).
    skipped_reasons:
        ``skipped`` by reason, for the summary line.
    """

    source: str
    format: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every parameter of the model came from the file."""
        return not self.missing

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"{self.source} ({self.format}): loaded {self.loaded}, missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)}, skipped {self.skipped}"
            + (
                " (by design: " + ", ".join(f"{why} {n}" for why, n in self.skipped_reasons.items()) + ")"
                if self.skipped_reasons
                else ""
            )
        )

    def refusal(self) -> str:
        """The message used when refusing to run an incompletely loaded model."""
        head = ", ".join(self.missing[:3]) + (" ..." if len(self.missing) > 3 else "")
        return (
            f"{self.source}: {len(self.missing)} of {self.loaded + len(self.missing)} model parameters were not "
            f"in the checkpoint ({head}); refusing to predict with randomly initialised weights"
        )


@dataclass
class LoadedModel:
    """A model with its tokenizer, fingerprint and load report.

    ``meta`` is the export's ``fusereview.json`` (prompts, run id, metrics) or ``{}``.
    """

    model: Sam3Model
    tokenizer: PromptTokenizer
    fingerprint: str
    report: LoadReport
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


_HASHES: dict[tuple[str, int, int], str] = {}


def file_fingerprint(*paths: Path) -> str:
    """Content hash of weight files (memoised per path, size and mtime, so re-opening is instant)."""
    h = hashlib.blake2b(digest_size=12)
    for path in paths:
        st = path.stat()
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in _HASHES:
            fh_hash = hashlib.blake2b(digest_size=12)
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    fh_hash.update(chunk)
            _HASHES[memo] = fh_hash.hexdigest()
        h.update(_HASHES[memo].encode())
    return "sha:" + h.hexdigest()


def config_fingerprint(config: Sam3Config) -> str:
    """Hash of a config (used with the seed for the tiny model, whose weights come from a seed)."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFormatError(f"{path}: cannot read the {what} ({exc})", file=str(path)) from exc
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"{path}: the {what} must be a JSON object", file=str(path))
    return data


def load_config(path: Path) -> Sam3Config:
    """Read a ``Sam3Config`` from ``config.json`` (a ``sam3`` config, or ``sam3_video``'s detector part)."""
    data = _read_json(path, "model config")
    if data.get("model_type") == "sam3_video" and isinstance(data.get("detector_config"), dict):
        data = data["detector_config"]
    if data.get("model_type") not in (None, "sam3"):
        raise CheckpointFormatError(
            f"{path}: model_type is {data.get('model_type')!r}, expected 'sam3'", file=str(path)
        )
    try:
        return Sam3Config(
            **{k: v for k, v in data.items() if k not in ("transformers_version", "architectures")}
        )
    except Exception as exc:  # config classes raise many kinds of errors on bad values
        raise CheckpointFormatError(f"{path}: not a valid SAM3 config ({exc})", file=str(path)) from exc


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file to CPU, turning damage into a :class:`CheckpointFormatError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointFormatError(
            f"{path}: not a readable safetensors file (truncated or damaged?): {exc}", file=str(path)
        ) from exc


def _check_torch_magic(path: Path) -> None:
    """Refuse a file that is not a ``torch.save`` file from its first bytes (nothing else is read)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":
        raise CheckpointFormatError(
            f"{path}: not a PyTorch checkpoint (expected a torch.save file such as sam3.pt or checkpoint.pt)",
            file=str(path),
        )


def _torch_load(path: Path) -> Any:
    _check_torch_magic(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4": noise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses arbitrary objects: that is the safety we want, not a bug to work
        # around. Torch's message advises loading with weights_only=False: never pass that on.
        found = re.search(r"Unsupported (?:global|operand)[^.\n]*", str(exc))
        what = f" ({found.group(0)[:160]})" if found else ""
        raise CheckpointFormatError(
            f"{path}: holds objects other than tensors and plain containers{what}; refusing to unpickle "
            "it: only checkpoints of plain tensors are loaded, never code",
            file=str(path),
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointFormatError(
            f"{path}: cannot read the checkpoint (truncated or damaged?): {exc}", file=str(path)
        ) from exc


def _is_state_dict(obj: Any) -> bool:
    # keys must be names: a dict {1: tensor} is a torch.save of something else, not a state dict
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _strip_prefixes(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Remove DDP's ``module.`` and keep the image model's part; returns (state, tensors ignored)."""
    out = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}
    for prefix in ("detector.", "detector_model."):
        if any(k.startswith(prefix) for k in out):
            kept = {k[len(prefix) :]: v for k, v in out.items() if k.startswith(prefix)}
            return kept, len(out) - len(kept)
    kept = {k: v for k, v in out.items() if not k.startswith(_OTHER_MODEL_PREFIXES)}
    return kept, len(out) - len(kept)


def check_state_dict(
    config: Sam3Config, state: Mapping[str, torch.Tensor], *, source: str, config_path: str = "the config"
) -> None:
    """Check names and shapes of ``state`` (transformers names) against a model of ``config``.

    Runs on a ``meta`` model (no memory, under a second even at full size), so bad files are refused
    before anything big is allocated.

    Raises
    ------
    CheckpointFormatError
        When fewer than half of the file's tensors have a name of SAM3's: the file holds another model.
    ConfigMismatchError
        When a tensor's shape differs from the model's.
    """
    with torch.device("meta"):
        model_state = Sam3Model(config).state_dict()
    own = {k: tuple(v.shape) for k, v in model_state.items()}
    matched = [k for k in state if k in own]
    if not state or len(matched) < len(state) / 2:
        example = next(iter(state), "(no tensors)")
        raise CheckpointFormatError(
            f"{source}: not a SAM3 image model: only {len(matched)} of its {len(state)} tensors have SAM3 "
            f"names (first key: {example!r})",
            file=str(source),
        )
    for k in matched:
        if tuple(state[k].shape) != own[k]:
            raise ConfigMismatchError(
                f"{source}: weights do not fit {config_path}: {k} has shape {tuple(state[k].shape)} in the file "
                f"but {own[k]} in the model",
                file=str(source),
            )
        if model_state[k].is_floating_point() and not state[k].is_floating_point():
            # int8 (or bool) data copied into float weights loads "fully" and predicts nothing
            raise CheckpointFormatError(
                f"{source}: {k} is {str(state[k].dtype).replace('torch.', '')} in the file, but a "
                "floating-point weight in the model (quantised or damaged weights are not read)",
                file=source,
                field=k,
            )


def build_model(config: Sam3Config, *, initialise: bool = False) -> Sam3Model:
    """A ``Sam3Model`` in eval mode; without ``initialise`` its weights are left uninitialised.

    Random initialisation of the full-size model takes ~40 s on a CPU and is wasted when every
    tensor is then loaded from a file (an incomplete load is refused anyway).
    """
    from fusereview.models.tiny import MODEL_BUILD_LOCK

    if initialise:
        return Sam3Model(config).eval()
    from transformers.initialization import no_init_weights

    with MODEL_BUILD_LOCK, no_init_weights():
        return Sam3Model(config).eval()


def apply_state_dict(
    model: Sam3Model,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    fmt: str,
    config_path: str = "the config",
) -> LoadReport:
    """Copy ``state`` (transformers names) into ``model`` after :func:`check_state_dict`; report the load."""
    check_state_dict(model.config, state, source=source, config_path=config_path)
    own = model.state_dict()
    matched = [k for k in state if k in own]
    model.load_state_dict({k: state[k] for k in matched}, strict=False)
    return LoadReport(
        source=source,
        format=fmt,
        loaded=len(matched),
        missing=sorted(set(own) - set(matched)),
        unexpected=sorted(set(state) - set(own)),
    )


# ---------------------------------------------------------------------------- formats


def detect_format(spec: str | Path) -> str:
    """Name the checkpoint format of ``spec`` without loading weights.

    Returns
    -------
    str
        ``tiny``, ``export``, ``transformers`` or ``torch`` (a ``.pt`` file: official or trainer,
        told apart once read).

    Raises
    ------
    CheckpointFormatError
        When the path does not exist or is of no known kind.
    """
    from fusereview.models.tiny import TINY_SPEC

    if str(spec) == TINY_SPEC:
        return "tiny"
    path = Path(spec)
    if path.is_dir():
        if (path / EXPORT_META).is_file():
            return "export"
        if (path / "config.json").is_file():
            return "transformers"
        raise CheckpointFormatError(
            f"{path}: folder is not a model (expected {EXPORT_META} or config.json with model.safetensors)",
            file=str(path),
        )
    if path.is_file():
        if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
            return "torch"
        if path.suffix == ".safetensors":
            raise CheckpointFormatError(
                f"{path}: a bare safetensors file has no config; pass the folder that holds it with config.json",
                file=str(path),
            )
        raise CheckpointFormatError(
            f"{path}: unknown model file type {path.suffix!r} (expected a folder, sam3.pt or checkpoint.pt)",
            file=str(path),
        )
    raise CheckpointFormatError(
        f"model not found: {spec} (expected 'tiny', a model folder, sam3.pt or checkpoint.pt)"
    )


def _resolve_tokenizer(
    tokenizer: str | Path | None, folder: Path, max_length: int, what: str
) -> PromptTokenizer:
    if tokenizer is not None:
        tok_path = Path(tokenizer)
        if tok_path.is_dir():
            return load_tokenizer_folder(tok_path, max_length)
        return load_tokenizer_file(tok_path, max_length)
    # whatever load_tokenizer_folder reads: tokenizer.json, CLIP's vocab.json + merges.txt, the official BPE file
    if any((folder / name).is_file() for name in ("tokenizer.json", "merges.txt", OFFICIAL_BPE_NAME)):
        return load_tokenizer_folder(folder, max_length)
    raise TokenizerError(
        f"{what} comes without a tokenizer: none of tokenizer.json, vocab.json + merges.txt, {OFFICIAL_BPE_NAME} "
        f"is in {folder}; {WHERE_TO_GET}"
    )


def _load_tiny(tokenizer: str | Path | None) -> LoadedModel:
    from fusereview.models.tiny import TINY_SEED, tiny_model, tiny_tokenizer

    model = tiny_model(TINY_SEED)
    n = len(model.state_dict())
    tok = tiny_tokenizer() if tokenizer is None else _resolve_tokenizer(tokenizer, Path("."), 16, "tiny")
    fp = f"tiny:{TINY_SEED}:{config_fingerprint(model.config)}"
    # Seeded initialisation *is* the tiny model's weights: every tensor counts as loaded.
    return LoadedModel(model, tok, fp, LoadReport("tiny", "tiny", loaded=n))


def _load_transformers_folder(path: Path, tokenizer: str | Path | None) -> LoadedModel:
    from transformers.utils import logging as hf_logging

    config = load_config(path / "config.json")
    # The tokenizer first: a missing one should fail in a second, not after reading gigabytes.
    tok = _resolve_tokenizer(tokenizer, path, config.text_config.max_position_embeddings, str(path))
    weights = sorted(path.glob("model*.safetensors"))
    if not weights:
        raise CheckpointFormatError(f"{path}: no model.safetensors in the model folder", file=str(path))
    for w in weights:  # damage shows here as a clear message rather than deep in from_pretrained
        _check_safetensors_header(w)
    # Names and shapes only: from_pretrained reads the weights itself, once.
    shapes: dict[str, torch.Tensor] = {}
    for w in weights:
        shapes.update(_safetensors_shapes(w))
    state, ignored = _strip_prefixes(shapes)
    check_state_dict(config, state, source=str(path), config_path=str(path / "config.json"))
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    # the "Loading weights" bar is tqdm, which the verbosity does not reach
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        # The brief's path: from_pretrained offline; it strips "detector_model." and ignores tracker keys.
        model, info = Sam3Model.from_pretrained(
            str(path), config=config, local_files_only=True, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointFormatError(
            f"{path}: transformers could not load the model folder: {exc}", file=str(path)
        ) from exc
    finally:
        hf_logging.set_verbosity(previous)
        if bar_was_on:
            hf_logging.enable_progress_bar()
    if info.get("mismatched_keys"):
        first = next(iter(info["mismatched_keys"]))
        raise ConfigMismatchError(f"{path}: weights do not fit config.json ({first})", file=str(path))
    # Report from our own comparison of names, which also covers what from_pretrained filled in.
    own = model.state_dict()
    matched = [k for k in state if k in own]
    report = LoadReport(
        source=str(path),
        format="transformers",
        loaded=len(matched),
        missing=sorted(set(own) - set(matched)),
        unexpected=sorted(set(state) - set(own)),
        skipped=ignored,
    )
    return LoadedModel(model.eval(), tok, file_fingerprint(*weights), report)


def _safetensors_shapes(path: Path) -> dict[str, torch.Tensor]:
    """Names and shapes of a safetensors file, as ``meta`` tensors (nothing is read but the header)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            out = {}
            for k in fh.keys():
                piece = fh.get_slice(k)
                dtype = _SAFETENSORS_DTYPES.get(piece.get_dtype(), torch.uint8)
                out[k] = torch.empty(piece.get_shape(), dtype=dtype, device="meta")
            return out
    except (SafetensorError, OSError) as exc:
        raise CheckpointFormatError(
            f"{path}: not a readable safetensors file: {exc}", file=str(path)
        ) from exc


# safetensors' dtype names -> torch (only whether a tensor is floating point matters here)
_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _check_safetensors_header(path: Path) -> None:
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointFormatError(f"{path}: not a safetensors file (too short)", file=str(path))
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise CheckpointFormatError(
                f"{path}: not a safetensors file (header length {n} > file size)", file=str(path)
            )
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise CheckpointFormatError(
                f"{path}: not a safetensors file (bad header)", file=str(path)
            ) from exc
    end = _header_end(path, header)
    if 8 + n + end > size:
        raise CheckpointFormatError(
            f"{path}: truncated safetensors file: needs {8 + n + end} bytes, has {size} (copy it again)",
            file=str(path),
        )


def _header_end(path: Path, header: Any) -> int:
    """Where the last tensor's data ends, after checking every entry of a safetensors header.

    The header is JSON the file's author wrote: a list, an entry without ``data_offsets``, or a
    string where an object belongs must be a clear refusal naming the entry, not a KeyError.
    """

    def bad(field: str, why: str) -> CheckpointFormatError:
        return CheckpointFormatError(
            f"{path}: not a safetensors file: header entry {field!r} {why}", file=str(path), field=field
        )

    if not isinstance(header, dict):
        raise CheckpointFormatError(
            f"{path}: not a safetensors file: the header is a JSON {type(header).__name__}, not an object",
            file=str(path),
        )
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise bad(name, f"is a {type(entry).__name__}, expected {{dtype, shape, data_offsets}}")
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(v) is int and v >= 0 for v in offsets)
            or offsets[0] > offsets[1]
        ):
            raise bad(name, f"has data_offsets {offsets!r:.80}, expected [begin, end] byte offsets")
        if not isinstance(entry.get("dtype"), str) or not isinstance(entry.get("shape"), list):
            raise bad(name, "lacks a dtype string or a shape list")
        end = max(end, offsets[1])
    return end


def _load_torch_file(
    path: Path, tokenizer: str | Path | None, config: str | Path | None, allow_incomplete: bool = False
) -> tuple[LoadedModel, dict[str, torch.Tensor]]:
    cfg_path = Path(config) if config is not None else path.parent / "config.json"
    if cfg_path.is_file():
        cfg = load_config(cfg_path)
        cfg_name = str(cfg_path)
    elif config is not None:
        raise CheckpointFormatError(f"model config not found: {cfg_path}")
    else:
        cfg, cfg_name = Sam3Config(), "the full-size SAM3 config (no config.json beside the checkpoint)"
    # The tokenizer first: a bare sam3.pt without one should fail in a second, not after reading 3.4 GB.
    _check_torch_magic(path)
    tok = _resolve_tokenizer(tokenizer, path.parent, cfg.text_config.max_position_embeddings, str(path))
    obj = _torch_load(path)
    fmt = "official"
    if isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in ("model", "model_state_dict", "state_dict"):
            if _is_state_dict(obj.get(key)):
                obj, fmt = obj[key], "trainer"
                break
    if not _is_state_dict(obj):
        kind = type(obj).__name__
        if isinstance(obj, Mapping) and obj and not all(isinstance(k, str) for k in obj):
            kind = f"dict whose keys are not tensor names (first key: {next(iter(obj))!r})"
        raise CheckpointFormatError(
            f"{path}: holds a {kind}, not a state dict of tensors (nor one under 'model' / 'model_state_dict')",
            file=str(path),
        )
    state, ignored = _strip_prefixes(obj)
    if any(k.startswith(("vision_encoder.", "detr_decoder.")) for k in state):
        converted, unknown, reasons = dict(state), [], {}  # already transformers names
    else:
        reasons = dict(Counter(why for why in map(skip_reason, state) if why))
        converted, unknown = official_to_transformers(state)
    check_state_dict(cfg, converted, source=str(path), config_path=cfg_name)
    model = build_model(cfg, initialise=allow_incomplete)
    report = apply_state_dict(model, converted, source=str(path), fmt=fmt, config_path=cfg_name)
    report.unexpected = sorted(set(report.unexpected) | set(unknown))
    report.skipped = sum(reasons.values()) + ignored
    report.skipped_reasons = {
        **reasons,
        **({"tracker and other models' tensors": ignored} if ignored else {}),
    }
    return LoadedModel(model, tok, file_fingerprint(path), report), converted


def _load_export(path: Path, tokenizer: str | Path | None, allow_incomplete: bool = False) -> LoadedModel:
    meta = _read_json(path / EXPORT_META, "export description")
    if meta.get("format") != EXPORT_FORMAT:
        raise CheckpointFormatError(
            f"{path / EXPORT_META}: format is {meta.get('format')!r}, expected {EXPORT_FORMAT!r}",
            file=str(path / EXPORT_META),
        )
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointFormatError(f"{path}: model.safetensors is missing from the export", file=str(path))
    _check_safetensors_header(weights)
    state = read_safetensors(weights)
    base = meta.get("base")
    if base:
        if not isinstance(base, dict) or not isinstance(base.get("spec"), str):
            raise CheckpointFormatError(
                f"{path / EXPORT_META}: base: expected {{'spec': str, 'fingerprint': str}}",
                file=str(path / EXPORT_META),
            )
        base_spec = base["spec"]
        if base_spec != "tiny" and not Path(base_spec).is_absolute():
            base_spec = str((path / base_spec).resolve())
        chain = _BASE_CHAIN.get()
        here = str(path.resolve())
        if base_spec != "tiny" and (str(Path(base_spec).resolve()) in (*chain, here) or len(chain) >= 8):
            loop = " -> ".join((*chain, here, str(Path(base_spec).resolve())))
            raise CheckpointFormatError(
                f"{path / EXPORT_META}: base: the chain of base models loops or is too long ({loop})",
                file=str(path / EXPORT_META),
                field="base.spec",
            )
        token = _BASE_CHAIN.set((*chain, here))
        try:
            base_loaded = load_model(base_spec)
        finally:
            _BASE_CHAIN.reset(token)
        if base.get("fingerprint") and not _same_fingerprint(base["fingerprint"], base_loaded.fingerprint):
            raise ModelLoadError(
                f"{path / EXPORT_META}: base: {base_spec} has changed since the export was made "
                f"(fingerprint {base_loaded.fingerprint}, expected {base['fingerprint']})",
                file=str(path / EXPORT_META),
            )
        model = base_loaded.model
        n_base = base_loaded.report.loaded
        cfg_path = path / "config.json"
        report = _overlay(model, state, source=str(path), cfg_path=str(cfg_path))
        report.loaded = max(report.loaded, n_base)
    else:
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise CheckpointFormatError(f"{path}: config.json is missing from the export", file=str(path))
        cfg = load_config(cfg_path)
        check_state_dict(cfg, state, source=str(path), config_path=str(cfg_path))
        model = build_model(cfg, initialise=allow_incomplete)
        report = apply_state_dict(model, state, source=str(path), fmt="export", config_path=str(cfg_path))
    max_len = model.config.text_config.max_position_embeddings
    tok = _resolve_tokenizer(tokenizer, path, max_len, str(path))
    return LoadedModel(model, tok, export_fingerprint(path, meta), report, meta)


# Exports being loaded, outermost first: a base that names one of them is a loop.
_BASE_CHAIN: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("base_chain", default=())


def export_fingerprint(path: Path, meta: Mapping[str, Any] | None = None) -> str:
    """``export:<export id>:<hash of model.safetensors>`` (what caches predictions of an export).

    The weights' hash is part of it: replacing an export's ``model.safetensors`` (keeping its
    ``fusereview.json``) must not keep serving the old weights' cached predictions. The hash is
    memoised by path, size and mtime, so re-opening is instant.
    """
    meta = meta if meta is not None else _read_json(path / EXPORT_META, "export description")
    weights = file_fingerprint(path / "model.safetensors")
    if not meta.get("export_id"):
        return weights
    return f"export:{meta['export_id']}:{weights.removeprefix('sha:')}"


def _same_fingerprint(recorded: str, actual: str) -> bool:
    # exports made before the weights' hash was part of the fingerprint recorded "export:<id>"
    return recorded == actual or (recorded.count(":") == 1 and actual.startswith(recorded + ":"))


def _overlay(
    model: Sam3Model, state: Mapping[str, torch.Tensor], *, source: str, cfg_path: str
) -> LoadReport:
    """Copy the trained subset of an export over a fully loaded base model."""
    own = model.state_dict()
    for k, v in state.items():
        if k in own and tuple(v.shape) != tuple(own[k].shape):
            raise ConfigMismatchError(
                f"{source}: {k} has shape {tuple(v.shape)} in the export but {tuple(own[k].shape)} in the base model",
                file=str(source),
            )
    matched = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(matched, strict=False)
    return LoadReport(source, "export", loaded=len(own), unexpected=sorted(set(state) - set(own)))


def load_model(
    spec: str | Path,
    *,
    tokenizer: str | Path | None = None,
    config: str | Path | None = None,
    allow_incomplete: bool = False,
) -> LoadedModel:
    """Load a SAM3 model from ``spec``, offline.

    Parameters
    ----------
    spec:
        ``"tiny"``, a transformers folder, ``sam3.pt``, a trainer ``checkpoint.pt`` or an export folder.
    tokenizer:
        ``tokenizer.json``, ``bpe_simple_vocab_16e6.txt.gz`` or a folder holding one; needed for a bare
        ``.pt`` unless one of them lies beside it.
    config:
        ``config.json`` for a ``.pt`` file (default: one beside it, else the full-size SAM3 config).
    allow_incomplete:
        Return a partially loaded model instead of raising (for inspection and training from a base;
        :class:`~fusereview.models.sam3.Sam3Predictor` still refuses to predict with it).

    Raises
    ------
    CheckpointFormatError, ConfigMismatchError, TokenizerError
        Bad input, with the file and the field named.
    IncompleteWeightsError
        When any model parameter was not in the file (unless ``allow_incomplete``).
    """
    fmt = detect_format(spec)
    if fmt == "tiny":
        loaded = _load_tiny(tokenizer)
    elif fmt == "transformers":
        loaded = _load_transformers_folder(Path(spec), tokenizer)
    elif fmt == "export":
        loaded = _load_export(Path(spec), tokenizer, allow_incomplete)
    else:
        loaded, _ = _load_torch_file(Path(spec), tokenizer, config, allow_incomplete)
    logging.getLogger(__name__).info("model %s", loaded.report.summary())
    if not loaded.report.complete and not allow_incomplete:
        raise IncompleteWeightsError(loaded.report.refusal(), file=loaded.report.source)
    _refuse_non_finite(loaded.model, str(spec))
    return loaded


def _refuse_non_finite(model: torch.nn.Module, source: str) -> None:
    """A weight holding NaN or infinity makes every score NaN: 0 detections, silently. Refuse it."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointFormatError(
                f"{source}: weight {name} holds {bad} NaN or infinite values; refusing a model that "
                "cannot predict (the file is damaged, or training diverged)",
                file=source,
                field=name,
            )
