"""Prompt tokenizer: CLIP's byte-level BPE, from a checkpoint folder, a file, or built in code.

SAM3's text encoder is CLIP's: lowercase, byte-level BPE with an end-of-word suffix ``</w>``, a
start token before and an end token after the prompt, padded with the end token to the text model's
maximum length (32 for SAM3). Three sources give the same kind of tokenizer:

* a checkpoint folder (``tokenizer.json``, or CLIP's ``vocab.json`` + ``merges.txt``);
* a file the user points to: ``tokenizer.json`` or the official ``bpe_simple_vocab_16e6.txt.gz``;
* :func:`build_tiny_tokenizer`: the same scheme without merges (one token per byte), built in code
  and deterministic, for tiny test models. It needs no file at all.
"""

from __future__ import annotations

import gzip
import html
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from fusereview.core.errors import ModelLoadError
from fusereview.core.files import write_text_atomic

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
OFFICIAL_BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
#: Where to get a tokenizer when none came with the checkpoint (quoted in error messages).
WHERE_TO_GET = (
    "get 'bpe_simple_vocab_16e6.txt.gz' from the official repository "
    "(github.com/facebookresearch/sam3, folder sam3/assets) or 'tokenizer.json' from the "
    "Hugging Face model facebook/sam3, and pass it with --tokenizer FILE"
)
# CLIP's pre-tokenizer pattern: contractions, letter runs, single digits, punctuation runs.
_CLIP_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


class TokenizerError(ModelLoadError):
    """A tokenizer is missing or cannot be read; the message names the file and where to get one."""


def _bytes_to_unicode() -> list[str]:
    """CLIP's (and GPT-2's) printable stand-ins for the 256 byte values, in CLIP's vocabulary order."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _clip_tokenizer(merges: list[tuple[str, str]]) -> Tokenizer:
    """A CLIP BPE tokenizer with CLIP's vocabulary order: bytes, bytes + ``</w>``, merges, specials."""
    base = _bytes_to_unicode()
    vocab_list = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    tok = Tokenizer(
        models.BPE(
            vocab=vocab, merges=merges, unk_token=EOS, continuing_subword_prefix="", end_of_word_suffix="</w>"
        )
    )
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return tok


def clean_prompt(text: str) -> str:
    """What CLIP's tokenizer does before BPE besides lowercasing: HTML entities unescaped (twice,
    for doubly escaped text such as ``&amp;amp;``) and the ends stripped. ``"person&amp;dog"`` is
    then ``"person&dog"``, 3 words and not 5. (CLIP also runs ``ftfy``, which fusereview does not
    depend on; it only repairs mis-decoded text.)"""
    return html.unescape(html.unescape(text)).strip()


@dataclass
class PromptTokenizer:
    """Turns category prompts into ``input_ids`` / ``attention_mask`` for SAM3's text encoder.

    Attributes
    ----------
    tokenizer:
        The ``tokenizers.Tokenizer`` (BPE model, normaliser and special tokens).
    max_length:
        Every prompt is padded (with the end token) or truncated to this many tokens.
    """

    tokenizer: Tokenizer
    max_length: int

    def __post_init__(self) -> None:
        for name in (BOS, EOS):
            if self.tokenizer.token_to_id(name) is None:
                raise TokenizerError(f"tokenizer has no '{name}' token: not a CLIP tokenizer; {WHERE_TO_GET}")
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(length=self.max_length, pad_id=self.pad_id, pad_token=EOS)

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the text model's embedding table must be at least this large)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def bos_id(self) -> int:
        """Id of the start token."""
        return int(self.tokenizer.token_to_id(BOS))

    @property
    def eos_id(self) -> int:
        """Id of the end token."""
        return int(self.tokenizer.token_to_id(EOS))

    @property
    def pad_id(self) -> int:
        """Id used for padding (CLIP pads with the end token; the attention mask hides it)."""
        return self.eos_id

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize prompts.

        Parameters
        ----------
        prompts:
            Category prompts such as ``"fuse neutrals"`` (cleaned by :func:`clean_prompt` first).

        Returns
        -------
        tuple of torch.Tensor
            ``input_ids`` and ``attention_mask``, both ``(len(prompts), max_length)`` int64.
        """
        encs = self.tokenizer.encode_batch([clean_prompt(p) for p in prompts])
        ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
        return ids, mask

    def save(self, folder: str | Path) -> Path:
        """Write ``tokenizer.json`` (and a small ``tokenizer_config.json``) into ``folder`` atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # Save without padding/truncation state: readers re-apply them from max_length.
        clone = Tokenizer.from_str(self.tokenizer.to_str())
        clone.no_padding()
        clone.no_truncation()
        _write_text_atomic(folder / "tokenizer.json", clone.to_str(pretty=False))
        cfg = {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": self.max_length,
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": EOS,
            "unk_token": EOS,
        }
        _write_text_atomic(folder / "tokenizer_config.json", json.dumps(cfg, indent=2))
        return folder / "tokenizer.json"


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(text, path)


def build_tiny_tokenizer(max_length: int = 16) -> PromptTokenizer:
    """The tiny models' tokenizer: CLIP's scheme with no merges (514 ids), built in code.

    Deterministic (no training, no file), lowercasing, start/end tokens, padded to ``max_length``.
    """
    return PromptTokenizer(_clip_tokenizer([]), max_length)


def _read_official_bpe(path: Path) -> list[tuple[str, str]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TokenizerError(f"{path}: cannot read the BPE merges file ({exc}); {WHERE_TO_GET}") from exc
    # Like CLIP's SimpleTokenizer: skip the version header, keep 49152 - 256 - 2 merges.
    body = [ln for ln in lines[1 : 49152 - 256 - 2 + 1] if ln.strip()]
    merges = []
    for n, line in enumerate(body, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerError(f"{path}: line {n}: expected two symbols of a BPE merge, got {line!r}")
        merges.append((parts[0], parts[1]))
    if not merges:
        raise TokenizerError(f"{path}: no BPE merges found; {WHERE_TO_GET}")
    return merges


def _read_tokenizer_json(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise TokenizerError(f"{path}: not a readable tokenizer.json ({exc}); {WHERE_TO_GET}") from exc


def load_tokenizer_file(path: str | Path, max_length: int) -> PromptTokenizer:
    """Load a tokenizer from ``tokenizer.json`` or CLIP's ``bpe_simple_vocab_16e6.txt.gz``.

    Raises
    ------
    TokenizerError
        When the file is missing or is neither of the two kinds.
    """
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"tokenizer file not found: {path}; {WHERE_TO_GET}")
    if path.name.endswith(".gz"):
        return PromptTokenizer(_clip_tokenizer(_read_official_bpe(path)), max_length)
    if path.suffix == ".json":
        return PromptTokenizer(_read_tokenizer_json(path), max_length)
    raise TokenizerError(
        f"{path}: unknown tokenizer file type (expected tokenizer.json or {OFFICIAL_BPE_NAME}); {WHERE_TO_GET}"
    )


def load_tokenizer_folder(folder: str | Path, max_length: int) -> PromptTokenizer:
    """Load the tokenizer saved in a checkpoint folder.

    Looks for ``tokenizer.json``, then CLIP's ``vocab.json`` + ``merges.txt``, then the official
    ``bpe_simple_vocab_16e6.txt.gz``.

    Raises
    ------
    TokenizerError
        Naming the folder, the files looked for, and where to get one.
    """
    folder = Path(folder)
    if (folder / "tokenizer.json").is_file():
        return PromptTokenizer(_read_tokenizer_json(folder / "tokenizer.json"), max_length)
    if (folder / "merges.txt").is_file() and (folder / "vocab.json").is_file():
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = [tuple(ln.split()) for ln in lines if ln.strip() and not ln.startswith("#version")]
        bad = [m for m in merges if len(m) != 2]
        if bad:
            raise TokenizerError(f"{folder / 'merges.txt'}: malformed merge {' '.join(bad[0])!r}")
        return PromptTokenizer(_clip_tokenizer(merges), max_length)  # type: ignore[arg-type]
    if (folder / OFFICIAL_BPE_NAME).is_file():
        return load_tokenizer_file(folder / OFFICIAL_BPE_NAME, max_length)
    raise TokenizerError(
        f"{folder}: no tokenizer in the checkpoint folder (looked for tokenizer.json, vocab.json + merges.txt, "
        f"{OFFICIAL_BPE_NAME}); {WHERE_TO_GET}"
    )
