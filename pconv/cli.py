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
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
