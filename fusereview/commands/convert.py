"""`fusereview convert`: official ``sam3.pt`` or trainer ``checkpoint.pt`` -> fusereview's export folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fusereview.core.errors import FusereviewError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this command's arguments."""
    parser.add_argument(
        "checkpoint", metavar="SAM3_PT", help="the official sam3.pt or a trainer checkpoint.pt"
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="bpe_simple_vocab_16e6.txt.gz or tokenizer.json (unless one lies beside it)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the export folder to write")
    parser.add_argument("--config", default=None, help="config.json of the model (default: full-size SAM3)")
    parser.add_argument("--bf16", action="store_true", help="store the weights as bfloat16 (half the size)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out folder")


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    from fusereview.models.checkpoints import detect_format, load_model
    from fusereview.models.export import save_export

    src = Path(args.checkpoint)
    if detect_format(src) != "torch":
        raise FusereviewError(
            f"{src}: convert reads sam3.pt or checkpoint.pt; this is a model folder already", file=str(src)
        )
    if args.out.exists() and not args.force:
        raise FusereviewError(f"--out {args.out}: already exists (use --force to replace it)")
    print(f"reading {src} ...", file=sys.stderr)
    loaded = load_model(src, tokenizer=args.tokenizer, config=args.config)
    print(loaded.report.summary(), file=sys.stderr)
    out = save_export(
        args.out,
        loaded.model,
        loaded.tokenizer,
        dtype="bfloat16" if args.bf16 else "float32",
        extra={"converted_from": str(src.resolve()), "source_fingerprint": loaded.fingerprint},
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0
