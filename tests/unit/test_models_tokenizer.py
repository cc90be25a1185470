"""Prompt tokenizer: the tiny one built in code, CLIP's merges file, tokenizer.json, clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from fusereview.models.tokenizer import (
    OFFICIAL_BPE_NAME,
    TokenizerError,
    build_tiny_tokenizer,
    load_tokenizer_file,
    load_tokenizer_folder,
)


def test_tiny_tokenizer_is_clip_like_and_deterministic() -> None:
    tok = build_tiny_tokenizer(max_length=8)
    ids, mask = tok.encode(["Fuse  Neutrals", "a"])
    assert ids.shape == mask.shape == (2, 8)
    assert ids[0, 0] == tok.bos_id and ids[1, 0] == tok.bos_id
    # truncated to 8 tokens, the end token kept last
    assert ids[0, -1] == tok.eos_id and mask[0].tolist() == [1] * 8
    # "a" -> BOS a</w> EOS, then padding (masked out)
    assert mask[1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert ids[1, 2] == tok.eos_id
    lower, _ = tok.encode(["fuse  neutrals"])
    assert lower.tolist()[0] == ids.tolist()[0]  # lowercased, whitespace collapsed
    again, _ = build_tiny_tokenizer(max_length=8).encode(["Fuse  Neutrals", "a"])
    assert again.tolist() == ids.tolist()
    assert tok.tokenizer.encode("fuse").tokens[:6] == [
        "<|startoftext|>",
        "f",
        "u",
        "s",
        "e</w>",
        "<|endoftext|>",
    ]


def test_official_bpe_file_builds_the_clip_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / OFFICIAL_BPE_NAME
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("#version: 0.2\nf u\nfu s\nfus e</w>\n")
    tok = load_tokenizer_file(path, max_length=5)
    assert tok.vocab_size == 512 + 3 + 2
    assert tok.bos_id == 515 and tok.eos_id == 516  # CLIP's order: bytes, bytes</w>, merges, specials
    assert tok.tokenizer.encode("FUSE").tokens[:3] == ["<|startoftext|>", "fuse</w>", "<|endoftext|>"]


def test_saved_tokenizer_loads_back_identically(tmp_path: Path) -> None:
    tok = build_tiny_tokenizer(max_length=6)
    tok.save(tmp_path)
    again = load_tokenizer_folder(tmp_path, max_length=6)
    assert again.encode(["fuse neutrals"])[0].tolist() == tok.encode(["fuse neutrals"])[0].tolist()


def test_missing_tokenizer_names_the_files_and_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError) as err:
        load_tokenizer_folder(tmp_path, max_length=32)
    msg = str(err.value)
    assert (
        str(tmp_path) in msg
        and "tokenizer.json" in msg
        and OFFICIAL_BPE_NAME in msg
        and "facebook/sam3" in msg
    )
    with pytest.raises(TokenizerError, match=r"tokenizer file not found: .*nope\.json"):
        load_tokenizer_file(tmp_path / "nope.json", max_length=32)
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match=r"not a readable tokenizer\.json"):
        load_tokenizer_file(bad, max_length=32)


def _person_dog_folder(tmp_path: Path) -> Path:
    """CLIP's vocab.json + merges.txt with just the merges that make "person" and "dog" one token each."""
    folder = tmp_path / "clip"
    folder.mkdir()
    merges = ["p e", "pe r", "per s", "pers o", "perso n</w>", "d o", "do g</w>"]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "vocab.json").write_text("{}")  # the vocabulary follows from the merges in CLIP's order
    return folder


def test_html_entities_are_unescaped_as_clip_does(tmp_path: Path) -> None:
    tok = load_tokenizer_folder(_person_dog_folder(tmp_path), 16)
    plain, plain_mask = tok.encode(["person&dog"])
    assert plain_mask.sum().item() == 5  # <start> person & dog <end>
    for escaped in ("person&amp;dog", "person&amp;amp;dog", "  person&#38;dog "):
        ids, mask = tok.encode([escaped])
        assert mask.sum().item() == 5, escaped
        assert ids.tolist() == plain.tolist(), escaped
