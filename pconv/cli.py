"""The ``pconv`` command line: parses arguments and calls library functions.

Heavy imports (torch) happen inside the commands so that ``pconv --help`` is instant.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version


def _package_version() -> str:
    try:
        return version("pconv")
    except PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv",
        description="Image inpainting with partial convolutions (Liu et al., ECCV 2018).",
    )
    parser.add_argument("--version", action="version", version=f"pconv {_package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="show versions, devices and model presets")
    info.set_defaults(handler=_run_info)
    _add_masks_commands(commands)
    return parser


def add_mask_convention_argument(parser: argparse.ArgumentParser) -> None:
    """``--mask-convention`` and ``--mask-channel``, shared by every command that reads masks."""
    parser.add_argument(
        "--mask-convention",
        choices=("white-hole", "black-hole"),
        default="white-hole",
        help="white-hole (default): white/255 = hole, as in image editors; black-hole: black/0 = hole",
    )
    parser.add_argument(
        "--mask-channel",
        choices=("auto", "alpha", "luminance"),
        default="auto",
        help="read masks from alpha or luminance; auto uses a varying alpha channel if there is one",
    )


def _size(text: str) -> tuple[int, int]:
    """``S`` or ``WxH`` as ``(width, height)``."""
    try:
        width, _, height = text.lower().partition("x")
        size = (int(width), int(height or width))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be S or WxH, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return size


def _add_masks_commands(commands) -> None:
    masks = commands.add_parser("masks", help="generate, preview and count hole masks (255 = hole)")
    actions = masks.add_subparsers(dest="masks_command", metavar="ACTION", required=True)

    generate = actions.add_parser("generate", help="write random irregular masks as PNGs (255 = hole)")
    generate.add_argument("out_dir", metavar="OUT_DIR")
    generate.add_argument("--count", type=int, default=100, help="number of masks (default 100)")
    generate.add_argument(
        "--bucket", type=int, choices=range(1, 7), help="hole-ratio bucket 1-6 (default: uniform over all)"
    )
    border = generate.add_mutually_exclusive_group()
    border.add_argument(
        "--border", dest="border", action="store_true", default=None, help="holes touch the edge"
    )
    border.add_argument(
        "--no-border", dest="border", action="store_false", help="no hole within 16 px of the edge"
    )
    generate.add_argument("--size", type=_size, default=(512, 512), help="S or WxH in pixels (default 512)")
    generate.add_argument("--seed", type=int, default=0, help="mask i is the same for the same seed and i")
    generate.add_argument("--overwrite", action="store_true", help="replace existing files of the same name")
    generate.set_defaults(handler=_run_masks_generate)

    preview = actions.add_parser("preview", help="write a contact sheet of a mask folder")
    preview.add_argument("folder", metavar="DIR")
    preview.add_argument("-o", "--output", required=True, help="sheet image (PNG, JPEG, ...)")
    preview.add_argument("--limit", type=int, default=64, help="masks shown (default 64)")
    preview.add_argument("--columns", type=int, default=8)
    preview.add_argument("--thumbnail", type=int, default=128, help="thumbnail size in pixels")
    add_mask_convention_argument(preview)
    preview.set_defaults(handler=_run_masks_preview)

    stats = actions.add_parser("stats", help="print the bucket/border histogram of a mask folder")
    stats.add_argument("folder", metavar="DIR")
    add_mask_convention_argument(stats)
    stats.set_defaults(handler=_run_masks_stats)


def _run_masks_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from pconv.masks import MaskGenerator, write_mask
    from pconv.masks.folder import bucket_histogram, describe_hole, format_histogram

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{index:05d}.png" for index in range(args.count)]
    existing = [path for path in paths if path.exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{len(existing)} files already exist (first: {existing[0]}); pass --overwrite")
    generator, written = MaskGenerator(), []
    width, height = args.size
    for index, path in enumerate(paths):
        rng = np.random.default_rng([args.seed, index])  # mask i depends on (seed, i) only
        hole = generator(height, width, rng, bucket=args.bucket, border=args.border)
        write_mask(path, hole)
        written.append(describe_hole(hole, path))
    print(f"wrote {len(paths)} masks ({width}×{height}, 255 = hole) to {out_dir}")
    print(format_histogram(bucket_histogram(written)))
    return 0


def _run_masks_preview(args: argparse.Namespace) -> int:
    from pconv.masks.folder import scan_masks
    from pconv.masks.preview import contact_sheet

    masks = scan_masks(args.folder, args.mask_convention, channel=args.mask_channel)[: args.limit]
    contact_sheet(
        masks,
        columns=args.columns,
        thumbnail=args.thumbnail,
        convention=args.mask_convention,
        channel=args.mask_channel,
    ).save(args.output)
    print(f"wrote a contact sheet of {len(masks)} masks to {args.output}")
    return 0


def _run_masks_stats(args: argparse.Namespace) -> int:
    from pconv.masks.folder import bucket_histogram, format_histogram, scan_masks

    masks = scan_masks(args.folder, args.mask_convention, channel=args.mask_channel)
    print(f"{len(masks)} masks in {args.folder}")
    print(format_histogram(bucket_histogram(masks)))
    return 0


def _run_info(args: argparse.Namespace) -> int:
    import torch

    from pconv.models import get_preset, list_presets

    print(f"pconv   {_package_version()}")
    print(f"torch   {torch.__version__}")
    print(f"python  {platform.python_version()} ({sys.executable})")
    print(f"cpu     {platform.machine()}, {torch.get_num_threads()} threads, "
          f"capability {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            print(f"cuda:{index}  {torch.cuda.get_device_name(index)} (CUDA {torch.version.cuda})")
    else:
        print("cuda    not available")
    print(f"mps     {'available' if torch.backends.mps.is_available() else 'not available'}")
    print("presets")
    for name in list_presets():
        config = get_preset(name)
        widths = ",".join(str(w) for w in config.widths)
        print(f"  {name:<6} depth {config.depth}, widths {widths}")
    return 0


class CommandError(Exception):
    """A user error a command reports as one line on stderr, with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CommandError, ValueError, OSError) as error:  # bad input: one line, no traceback
        print(f"pconv: error: {error}", file=sys.stderr)
        return 2
