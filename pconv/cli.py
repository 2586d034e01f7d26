"""The ``pconv`` command line: parses arguments and calls library functions.

Heavy imports (torch) happen inside the commands so that ``pconv --help`` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pconv.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv",
        description="Image inpainting with partial convolutions (Liu et al., ECCV 2018).",
    )
    parser.add_argument("--version", action="version", version=f"pconv {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="show versions, devices and model presets")
    info.set_defaults(handler=_run_info)
    _add_inpaint_command(commands)
    _add_upscale_command(commands)
    _add_evaluate_command(commands)
    _add_evaluate_upscaling_command(commands)
    _add_masks_commands(commands)
    _add_train_command(commands)
    _add_export_command(commands)
    _add_bench_command(commands)
    _add_serve_command(commands)
    return parser


def add_mask_convention_argument(
    parser: argparse.ArgumentParser, *, channel: bool = True, default: str | None = "white-hole"
) -> None:
    """``--mask-convention`` and ``--mask-channel``, shared by every command that reads masks."""
    parser.add_argument(
        "--mask-convention",
        choices=("white-hole", "black-hole"),
        default=default,
        help="white-hole (default): white/255 = hole, as in image editors; black-hole: black/0 = hole",
    )
    if not channel:
        return
    parser.add_argument(
        "--mask-channel",
        choices=("auto", "alpha", "luminance"),
        default="auto",
        help="read masks from alpha or luminance; auto uses a varying alpha channel if there is one",
    )


def _add_model_arguments(parser: argparse.ArgumentParser, weights_help: str) -> None:
    """``--weights``, ``--device`` and ``--precision``, for every command that loads a model to run it."""
    add = parser.add_argument
    add("--weights", metavar="PATH", help=weights_help)
    add("--device", default="auto", help="auto (default: CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    add("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
        help="autocast (default: bf16/fp16 on CUDA, fp32 elsewhere)")  # fmt: skip


def _add_window_arguments(parser: argparse.ArgumentParser, max_pixels_help: str) -> None:
    """``--max-pixels`` and ``--context`` of the windows for large images (:mod:`pconv.inference.windows`)."""
    add = parser.add_argument
    add("--max-pixels", type=int, default=None, metavar="N", help=f"{max_pixels_help} (default 2048×2048)")
    add("--context", type=int, default=None, metavar="PX", help="image kept around each window's core (256)")


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


def _add_inpaint_command(commands) -> None:
    inpaint = commands.add_parser(
        "inpaint",
        help="fill the holes of an image, or of a folder of images",
        description="Fill the holes of IMAGE marked in MASK (white/255 = hole) and write OUT, or do the "
        "same for every image of --input-dir that has a mask of the same name (any extension) in "
        "--mask-dir. Known pixels stay bit-identical; size, mode, alpha, bit depth and metadata are "
        "kept; the output format follows the output's extension.",
    )
    add = inpaint.add_argument
    add("image", nargs="?", metavar="IMAGE", help="image to inpaint")
    add("--mask", metavar="MASK", help="mask image of IMAGE's size, white/255 = hole")
    add("-o", "--output", metavar="OUT", help="inpainted image (.png, .jpg, .webp, .tif, .bmp)")
    add("--input-dir", metavar="DIR", help="folder of images (searched recursively)")
    add("--mask-dir", metavar="DIR", help="folder of masks, matched to images by name without extension")
    add("--output-dir", metavar="DIR", help="folder for the results (same names as the images)")
    _add_model_arguments(inpaint, "model weights (.safetensors or checkpoint.pt; default: shipped)")
    _add_window_arguments(inpaint, "larger images are inpainted in windows around their holes")
    add("--overwrite", action="store_true", help="replace existing outputs (otherwise an error)")
    add("--compile", action="store_true",
        help="torch.compile the network: slow first image of each size, faster later ones")  # fmt: skip
    add("--backend", choices=("torch", "onnxruntime"), default="torch",
        help="onnxruntime: run the --onnx file on the CPU (pip install 'pconv[onnx]')")  # fmt: skip
    add("--onnx", metavar="FILE", help="ONNX model for --backend onnxruntime (pconv export --format onnx)")
    add(
        "--no-blend",
        dest="blend",
        action="store_false",
        help="write the network's fill as it is, not blended into the hole's border (the paper's form)",
    )
    add("--refine", action="store_true",
        help="rebuild the fills from patches of the image's known pixels, steered by the network's "
        "fill: real texture in large holes, about 1 s more per 512x512 image on 2 CPU cores")  # fmt: skip
    add("--seed", type=int, default=0, help="seed of --refine's random search (default 0)")
    add_mask_convention_argument(inpaint)
    inpaint.set_defaults(handler=_run_inpaint)


def _run_inpaint(args: argparse.Namespace) -> int:
    from pconv.inference import Inpainter
    from pconv.inference.folders import check_outputs, inpaint_file, inpaint_folder

    folders = (args.input_dir, args.mask_dir, args.output_dir)
    single = args.image is not None and args.mask and args.output and not any(folders)
    folder = args.image is None and all(folders) and not (args.mask or args.output)
    if not (single or folder):
        raise CommandError("give IMAGE --mask MASK -o OUT, or --input-dir, --mask-dir and --output-dir")
    if single:
        check_outputs([Path(args.output)], args.overwrite)
    windows = {key: value for key in ("max_pixels", "context") if (value := getattr(args, key)) is not None}
    inpainter = Inpainter(
        args.weights, args.device, precision=args.precision, compile=args.compile,
        backend=args.backend, onnx=args.onnx, blend=args.blend, refine=args.refine, seed=args.seed,
        **windows,
    )  # fmt: skip
    masks = {"mask_convention": args.mask_convention, "mask_channel": args.mask_channel}
    if single:
        if not inpaint_file(inpainter, args.image, args.mask, args.output, overwrite=args.overwrite, **masks):
            _notice_unchanged(args.mask, args.image, args.output)
        print(f"wrote {args.output}")
        return 0
    report = inpaint_folder(
        inpainter, args.input_dir, args.mask_dir, args.output_dir, overwrite=args.overwrite,
        progress=_progress_bar("inpainting"), **masks,
    )  # fmt: skip
    _report_unmatched(report.images_without_mask, "image", f"without a mask in {args.mask_dir} (skipped)")
    _report_unmatched(report.masks_without_image, "mask", f"without an image in {args.input_dir} (ignored)")
    for image in report.unchanged:
        print(f"pconv: notice: the mask of {image} has no hole; its output is a copy of it", file=sys.stderr)
    return _summarise(report, "inpainted", args.output_dir)


def _notice_unchanged(mask: str, image: str, output: str) -> None:
    print(f"pconv: notice: {mask} has no hole; {output} is {image} unchanged", file=sys.stderr)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _report_unmatched(paths: list[Path], noun: str, what: str) -> None:
    if paths:
        names = ", ".join(str(path) for path in paths[:5]) + (", ..." if len(paths) > 5 else "")
        print(f"pconv: {_count(len(paths), noun)} {what}: {names}", file=sys.stderr)


def _progress_bar(doing: str):
    """A progress wrapper for the folder jobs of pconv.inference.folders."""
    from tqdm import tqdm

    return lambda jobs: tqdm(jobs, desc=doing, unit="image")


def _summarise(report, done: str, output_dir: str) -> int:
    """Print a folder job's failures and summary; exit status 1 if any file failed."""
    for image, error in report.failed:
        print(f"pconv: error: {image}: {describe_error(error)}", file=sys.stderr)
    print(f"{done} {len(report.written)} of {report.total} images into {output_dir}")
    if report.failed:
        print(f"pconv: {_count(len(report.failed), 'image')} failed (see above)", file=sys.stderr)
    return 1 if report.failed else 0


def _add_upscale_command(commands) -> None:
    upscale = commands.add_parser(
        "upscale",
        help="enlarge an image, or a folder of images, ×2 or ×4 (super-resolution)",
        description="Upscale IMAGE by --scale and write OUT, or every image of --input-dir into "
        "--output-dir, with the super-resolution model (super-resolution as inpainting: each pixel "
        "is spread over a larger canvas whose gaps the network fills). Mode, alpha, bit depth and "
        "metadata are kept; the output format follows the output's extension.",
    )
    add = upscale.add_argument
    add("image", nargs="?", metavar="IMAGE", help="image to upscale")
    add("--scale", type=int, choices=(2, 4), required=True, help="upscaling factor")
    add("-o", "--output", metavar="OUT", help="upscaled image (.png, .jpg, .webp, .tif, .bmp)")
    add("--input-dir", metavar="DIR", help="folder of images (searched recursively)")
    add("--output-dir", metavar="DIR", help="folder for the results (same names as the images)")
    _add_model_arguments(
        upscale, "super-resolution weights (from pconv train --task superres; default: shipped)"
    )
    _add_window_arguments(upscale, "larger results are computed in windows")
    add("--overwrite", action="store_true", help="replace existing outputs (otherwise an error)")
    upscale.set_defaults(handler=_run_upscale)


def _run_upscale(args: argparse.Namespace) -> int:
    from pconv.inference import Upscaler, read_picture, write_picture
    from pconv.inference.folders import check_outputs, upscale_folder

    single = args.image is not None and args.output and not (args.input_dir or args.output_dir)
    folder = args.image is None and args.input_dir and args.output_dir and not args.output
    if not (single or folder):
        raise CommandError("give IMAGE --scale K -o OUT, or --input-dir and --output-dir")
    if single:
        check_outputs([Path(args.output)], args.overwrite)
    windows = {key: value for key in ("max_pixels", "context") if (value := getattr(args, key)) is not None}
    upscaler = Upscaler(args.weights, args.device, precision=args.precision, **windows)
    if single:
        upscaled = upscaler.upscale(read_picture(args.image), args.scale)
        write_picture(upscaled, args.output, overwrite=args.overwrite)
        print(f"wrote {args.output}")
        return 0
    report = upscale_folder(
        upscaler, args.input_dir, args.output_dir, args.scale, overwrite=args.overwrite,
        progress=_progress_bar("upscaling"),
    )  # fmt: skip
    return _summarise(report, f"upscaled ×{args.scale}", args.output_dir)


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="score inpainting methods per hole-ratio bucket (L1, PSNR, SSIM)",
        description="Inpaint images with each method, composite, and print mean L1 (%% of 255), PSNR "
        "(dB, peak 255) and SSIM (scikit-image's, colour) per hole-ratio bucket as Markdown. Each image "
        "gets one mask of every bucket × border category in --masks (drawn with --seed), or the pairs "
        "of --pairs.",
    )
    add = evaluate.add_argument
    add("--images", required=True, metavar="DIR", help="ground-truth images (searched recursively)")
    add("--masks", required=True, metavar="DIR", help="masks, 255 = hole (e.g. the NVIDIA test masks)")
    add("--methods", default="pconv,telea,ns", metavar="A,B,...",
        help="from pconv (the default model), pconv:PATH, pconv-noblend[:PATH] (no border blending), "
        "pconv-refine[:PATH] (refined with patch synthesis), "
        "telea, ns, biharmonic, patchmatch")  # fmt: skip
    add("--pairs", metavar="FILE.csv", help="explicit pairs: CSV with columns image,mask (relative paths)")
    add("--seed", type=int, default=0, help="seed of the image-mask pairing (default 0)")
    add("--size", type=int, metavar="S", help="resize images (shorter side, Lanczos) and centre-crop to S×S")
    add("--limit", type=int, metavar="N", help="use the first N images (with --pairs: the first N pairs)")
    add("--by-border", action="store_true", help="also split each bucket by border / no border")
    add("--report", metavar="FILE.md", help="write the Markdown tables here too")
    add("--json", metavar="FILE.json", help="write the means per method and column as JSON")
    add("--per-image", metavar="FILE.csv", help="write one row per case and method")
    add("--grid", metavar="FILE.png", help="write a comparison grid (one case per bucket)")
    add("--device", default="auto", help="device of the pconv methods (default: CUDA, MPS, CPU)")
    add("--batch-size", type=int, default=8, metavar="N", help="cases loaded and inpainted at once (8)")
    evaluate.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import shlex

    from PIL import Image
    from tqdm import tqdm

    from pconv.eval import inpainting
    from pconv.eval.cases import paired_cases, seeded_cases
    from pconv.files import list_image_files
    from pconv.masks.folder import scan_masks

    _check_report_folders(args.report, args.json, args.per_image, args.grid)
    names = _method_names(args.methods)
    methods = {name: inpainting.get_method(name, args.device) for name in names}
    if args.pairs:
        cases = paired_cases(args.pairs, args.images, args.masks)[: args.limit]
    else:
        images = list_image_files(args.images)[: args.limit]
        if not images:
            raise CommandError(f"no images found in {args.images}")
        cases = seeded_cases(images, scan_masks(args.masks), args.seed)
    with tqdm(total=len(cases), desc="evaluating", unit="case") as bar:
        options = {"size": args.size, "batch_size": args.batch_size, "progress": bar.update}
        records, kept = inpainting.evaluate(cases, methods, keep=inpainting.grid_cases(cases), **options)
    summary = inpainting.summarize(records, args.by_border)
    command = shlex.join(["pconv", *args.argv])
    _print_report(inpainting.markdown_report(summary, command=command, cases=len(cases)), args.report)
    if args.json:
        inpainting.write_json(summary, args.json, command=command, cases=len(cases), seed=args.seed)
    if args.per_image:
        inpainting.write_per_image(records, args.per_image)
    if args.grid:
        Image.fromarray(inpainting.comparison_grid(dict(sorted(kept.items())), names)).save(args.grid)
    return 0


def _check_report_folders(*paths: str | None) -> None:
    """Fail now, not after hours of evaluation, if a report file's folder is missing."""
    for path in filter(None, paths):
        if not Path(path).parent.is_dir():
            raise CommandError(f"cannot write {path}: folder {Path(path).parent} does not exist")


def _method_names(text: str) -> list[str]:
    """``"pconv, telea"`` → ``["pconv", "telea"]``."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _print_report(report: str, path: str | None) -> None:
    print(report)
    if path:
        Path(path).write_text(report)


def _add_evaluate_upscaling_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate-upscaling",
        help="score super-resolution against bicubic and Lanczos (PSNR, SSIM; RGB and Y)",
        description="Downscale each image (antialiased bicubic), upscale it back with each method and "
        "print mean PSNR and SSIM on RGB and on BT.601 luma, leaving out a border of `scale` pixels, "
        "per scale as Markdown.",
    )
    add = evaluate.add_argument
    add("--images", required=True, metavar="DIR", help="ground-truth images (searched recursively)")
    add("--scales", type=int, nargs="+", choices=(2, 4), default=[2, 4], metavar="K", help="(default 2 4)")
    add("--methods", default="bicubic,lanczos,pconv", metavar="A,B,...",
        help="from bicubic, lanczos, pconv (the shipped model), pconv:PATH")  # fmt: skip
    add("--limit", type=int, metavar="N", help="use the first N images")
    add("--report", metavar="FILE.md", help="write the Markdown table here too")
    add("--json", metavar="FILE.json", help="write the means and every image's scores as JSON")
    add("--grid", metavar="FILE.png", help="write centred crops of the first images side by side")
    add("--device", default="auto", help="device of the pconv methods (default: CUDA, MPS, CPU)")
    evaluate.set_defaults(handler=_run_evaluate_upscaling)


def _run_evaluate_upscaling(args: argparse.Namespace) -> int:
    import shlex

    from PIL import Image
    from tqdm import tqdm

    from pconv.eval import upscaling
    from pconv.files import list_image_files

    _check_report_folders(args.report, args.json, args.grid)
    names = _method_names(args.methods)
    methods = {name: upscaling.get_upscaler(name, args.device) for name in names}
    images = list_image_files(args.images)[: args.limit]
    if not images:
        raise CommandError(f"no images found in {args.images}")
    with tqdm(total=len(images), desc="evaluating", unit="image") as bar:
        records, kept = upscaling.evaluate_upscaling(
            images, methods, args.scales, keep=range(3 if args.grid else 0), progress=bar.update
        )
    summary = upscaling.summarize(records)
    command = shlex.join(["pconv", *args.argv])
    _print_report(f"`{command}`\n\n" + upscaling.markdown_table(summary, images=len(images)), args.report)
    if args.json:
        upscaling.write_json(summary, records, args.json, command=command, images=len(images))
    if args.grid:
        Image.fromarray(upscaling.crop_grid(kept, [*names, "truth"])).save(args.grid)
    return 0


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
    from pconv.masks.folder import bucket_histogram, format_histogram, write_generated_masks

    try:
        written = write_generated_masks(
            args.out_dir, args.count, tuple(args.size), seed=args.seed, bucket=args.bucket,
            border=args.border, overwrite=args.overwrite,
        )  # fmt: skip
    except FileExistsError as error:
        raise CommandError(str(error)) from None
    width, height = args.size
    print(f"wrote {len(written)} masks ({width}×{height}, 255 = hole) to {args.out_dir}")
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


def _loss_weights(text: str) -> dict[str, float]:
    """``hole=6,style=120`` as a dict."""
    try:
        return {name.strip(): float(value) for name, value in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"loss weights look like hole=6,style=120, not {text!r}") from None


def _add_train_command(commands) -> None:
    from pconv.train.config import TASKS, TrainConfig

    train = commands.add_parser(
        "train",
        help="train a model (the paper's loss and two-stage schedule)",
        description="Train a PConv U-Net. Settings come from the defaults, then --config FILE.toml, then "
        "the flags. A run lives in --out: checkpoint.pt, metrics.jsonl, tensorboard/, samples/, "
        "model.safetensors. Multi-GPU: torchrun --nproc-per-node N -m pconv train ...",
    )
    add = _setting_adder(train, TrainConfig)
    add("--config", metavar="FILE.toml", help="settings file (keys named like the flags, with underscores)")
    add("--data", metavar="DIR", help="training images (searched recursively)")
    add("--val", metavar="DIR", help="validation images (L1/PSNR/SSIM and image grids while training)")
    add("--val-masks", metavar="DIR", help="validation masks, 255 = hole (default: generated)")
    add("--val-limit", type=int, metavar="N", help="validation images used")
    add("--val-crop", type=int, metavar="PX", help="validation crop size (default: --crop)")
    add("--out", metavar="DIR", help="run folder")
    add("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    add("--preset", help="model preset: paper, small, mini, tiny (default paper, or --init's)")
    add("--depth", type=int, help="U-Net levels (default: the preset's)")
    add("--crop", type=int, metavar="PX", help="training crop size")
    add("--batch-size", type=int, metavar="N", help="images per step and process")
    add("--steps", type=int, metavar="N", help="optimizer steps of the run in total")
    add("--lr", type=float, help="learning rate (default 2e-4 in stage 1, 5e-5 in stage 2)")
    add("--lr-decay-steps", type=int, metavar="N",
        help="lower the learning rate linearly to 0 over the last N steps; 0: a constant rate")  # fmt: skip
    add("--stage", type=int, choices=(1, 2), help="1: batch norm trains; 2: encoder batch norm frozen")
    add("--init", metavar="CHECKPOINT", help="start from these weights (stage 2: the stage-1 result)")
    add("--masks", metavar="DIR", help="training masks, augmented (default: the mask generator)")
    add("--task", choices=TASKS,
        help="inpaint, or superres: super-resolution as inpainting (pconv upscale)")  # fmt: skip
    add("--scales", type=int, nargs="+", choices=(2, 4), metavar="K",
        help="superres: upscaling factors trained, each item one of them")  # fmt: skip
    add_mask_convention_argument(train, channel=False, default=None)
    add("--loss-weights", dest="loss", type=_loss_weights, metavar="NAME=W,...",
        help="loss weights: valid, hole, perceptual, style, tv (default the paper's 1,6,0.05,120,0.1; "
        "with Caffe-convention VGG weights, whose features are ~58x larger, perceptual and style "
        "default to 0.05/57.6 = 8.7e-4 and 120/57.6^2 = 0.036), and border: an extra L1 term on "
        "the hole pixels within 3 px of the border (not in the paper; default 0)")  # fmt: skip
    vgg = train.add_mutually_exclusive_group()
    vgg.add_argument("--vgg-weights", metavar="PATH", help="VGG weights: .safetensors, .pth or 'torchvision'")
    vgg.add_argument("--random-vgg", action="store_true", default=None, help="random VGG (smoke tests only)")
    add("--vgg-crop", type=int, metavar="PX",
        help="perceptual and style terms on a PX-square window around a random hole pixel per image; "
        "0: on the whole image, as in the paper")  # fmt: skip
    add("--seed", type=int, help="seed of the model init, data order, crops and masks")
    add("--device", help="auto, cpu, cuda, cuda:1, mps")
    add("--precision", choices=("auto", "fp32", "bf16", "fp16"),
        help="autocast; auto: bf16 on CUDA and on CPUs with native bf16 (AMX, AVX512-BF16), "
        "else fp32")  # fmt: skip
    add(
        "--workers",
        type=int,
        metavar="N",
        help="data-loading processes (default 0 on a CPU, else min(4, cores))",
    )
    add("--checkpoint-every", type=int, metavar="N", help="steps between checkpoints")
    add("--val-every", type=int, metavar="N", help="steps between validations")
    add("--log-every", type=int, metavar="N", help="steps between log lines")
    add("--export-dtype", choices=("float32", "float16"), help="dtype of model.safetensors")
    train.set_defaults(handler=_run_train)


def _setting_adder(parser: argparse.ArgumentParser, settings: type) -> Callable[..., argparse.Action]:
    """``parser.add_argument``, where a flag that sets a field of the dataclass
    ``settings`` (named alike, dashes for underscores) gets that field's default at the
    end of its help, so that the two cannot drift apart. Flags default to None: the
    settings file and the dataclass decide what is not given."""
    defaults = {
        field.name: field.default
        for field in dataclasses.fields(settings)
        if field.default not in (dataclasses.MISSING, None)
    }

    def add(*flags: str, **options) -> argparse.Action:
        name = options.get("dest") or flags[-1].lstrip("-").replace("-", "_")
        if name in defaults and "help" in options:
            default = defaults[name]
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            options["help"] += f" (default {shown})"
        return parser.add_argument(*flags, **options)

    return add


def _run_train(args: argparse.Namespace) -> int:
    from pconv.train import CheckpointError, TrainConfig, TrainingError, load_config_file, resume, train

    settings = load_config_file(args.config) if args.config else {}
    # Every TrainConfig field is set by the flag of the same name (dashes for underscores).
    flags = {name: getattr(args, name) for name in TrainConfig.__dataclass_fields__}
    settings |= {name: value for name, value in flags.items() if value is not None}
    try:
        if args.resume:
            if "out" not in settings:
                raise CommandError("--resume needs --out (the run folder)")
            resume(settings.pop("out"), overrides=settings)
        else:
            train(TrainConfig.from_dict(settings))
    except (TrainingError, CheckpointError) as error:
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:
        raise CommandError(
            "interrupted; continue from the last checkpoint with: "
            f"pconv train --out {settings.get('out')} --resume"
        ) from None
    return 0


def _add_export_command(commands) -> None:
    export = commands.add_parser(
        "export",
        help="export a model: safetensors weights, ONNX or TorchScript",
        description="Write a model's weights (safetensors), or its network as ONNX (opset 18) or "
        "TorchScript with inputs image (N,3,H,W) in [0,1] and mask (N,1,H,W), 1 = known, and output "
        "output (N,3,H,W). H and W must be multiples of 2**depth: callers pad with hole and crop "
        "(pconv inpaint --backend onnxruntime does). Default weights: the shipped model.",
    )
    add = export.add_argument
    add("--format", choices=("safetensors", "onnx", "torchscript"), default="safetensors")
    add("--weights", metavar="PATH", help="checkpoint.pt or .safetensors (default: the shipped model)")
    add("-o", "--output", required=True, metavar="FILE")
    add("--half", action="store_true", help="safetensors: store float16 weights (half the size)")
    add("--dynamic", action="store_true", help="onnx/torchscript: any batch, H and W (the default)")
    add("--height", type=int, metavar="H", help="onnx/torchscript: fix the input height (with --width)")
    add("--width", type=int, metavar="W", help="onnx/torchscript: fix the input width (with --height)")
    export.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from pconv.weights import default_weights, load_weights, provenance, save_weights

    fixed = (args.height, args.width)
    if args.format == "safetensors" and (args.dynamic or any(fixed)):
        raise CommandError("--dynamic, --height and --width are for --format onnx or torchscript")
    if args.format != "safetensors" and args.half:
        raise CommandError("--half is for --format safetensors (ONNX and TorchScript exports are float32)")
    if any(fixed) and (args.dynamic or not all(fixed)):
        raise CommandError("give --height and --width together, or --dynamic")
    model, metadata = load_weights(args.weights or default_weights())
    if args.format == "safetensors":
        dtype = torch.float16 if args.half else torch.float32
        path = save_weights(model, args.output, dtype=dtype, metadata=provenance(metadata))
        size_mb = path.stat().st_size / 1e6
        print(f"wrote {path} ({size_mb:.1f} MB, preset {model.preset}, depth {model.depth})")
        return 0
    from pconv.export import ONNX_OPSET, export_onnx, export_torchscript

    size = fixed if all(fixed) else None
    exporter = export_onnx if args.format == "onnx" else export_torchscript
    path = exporter(model, args.output, size)
    shape = "dynamic sizes" if size is None else f"{size[0]}×{size[1]} inputs"
    opset = f", opset {ONNX_OPSET}" if args.format == "onnx" else ""
    print(f"wrote {path} ({args.format}{opset}, {shape}; H and W multiples of {model.multiple})")
    return 0


def _add_bench_command(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="time partial convolution against plain convolution (layers and U-Nets)",
        description="Time and measure, in one run, plain convolution (the floor), partial convolution "
        "as popular implementations write it (a per-channel mask convolved with a kernel of ones) and "
        "pconv's, forward and forward+backward, for the paper's layer shapes and whole U-Nets; prints "
        "median times, peak memory and ratios to plain convolution as a Markdown table.",
    )
    add = bench.add_argument
    add("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    add(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="autocast for all three (default fp32)",
    )
    add("--channels-last", action="store_true", help="channels-last tensors and weights for all three")
    add("--presets", nargs="*", default=["paper"], metavar="PRESET", help="U-Net presets (default: paper)")
    add("--sizes", nargs="*", type=int, default=[256, 512], metavar="S", help="U-Net input sides (256 512)")
    add("--batch", type=int, default=1, metavar="N", help="U-Net batch size (default 1)")
    add("--no-layers", action="store_true", help="skip the single-layer cases")
    add("--repeats", type=int, default=7, metavar="N", help="timed rounds per case (default 7)")
    add("--warmup", type=int, default=1, metavar="N", help="untimed calls before the rounds (default 1)")
    add("--json", metavar="FILE", help="also write every round's time and peak to FILE")
    bench.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import json

    import torch

    from pconv.bench import PAPER_LAYERS, NetworkCase, format_table, run_benchmark
    from pconv.devices import autocast_dtype, resolve_device

    if args.repeats < 1 or args.warmup < 0 or args.batch < 1 or min(args.sizes, default=1) < 1:
        raise CommandError("--repeats, --batch and --sizes must be positive and --warmup not negative")
    device = resolve_device(args.device)
    dtype = autocast_dtype(args.precision, device)
    networks = [NetworkCase(preset, args.batch, size) for preset in args.presets for size in args.sizes]
    print(f"# pconv bench: torch {torch.__version__}, {_device_description(device)}, "
          f"{'fp32' if dtype == torch.float32 else args.precision + ' autocast'}"
          f"{', channels-last' if args.channels_last else ''}, median of {args.repeats} rounds")  # fmt: skip
    results = run_benchmark(
        () if args.no_layers else PAPER_LAYERS,
        networks,
        device=device,
        autocast=None if dtype == torch.float32 else dtype,
        channels_last=args.channels_last,
        repeats=args.repeats,
        warmup=args.warmup,
        progress=lambda name: print(f"  {name}", file=sys.stderr, flush=True),
    )
    print(format_table(results))
    if args.json:
        rows = [vars(result) for result in results]
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def _add_serve_command(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="start the web page and REST API (pip install 'pconv[serve]')",
        description="Serve the web page (/) and the REST API (POST /api/inpaint, GET /api/health, "
        "docs at /docs) with one model, loaded once. Requests are inpainted one at a time; up to "
        "--queue-size wait, more get 503 with Retry-After.",
    )
    add = serve.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    add("--port", type=int, default=8000, help="port (default 8000)")
    _add_model_arguments(serve, "model weights (.safetensors or checkpoint.pt; default: shipped)")
    add("--max-upload-mb", type=float, default=50.0, metavar="MB",
        help="largest request body, image + mask (default 50; 413 beyond)")  # fmt: skip
    add("--max-image-pixels", type=int, default=4096 * 4096, metavar="N",
        help="largest image, width × height (default 4096×4096; 413 beyond)")  # fmt: skip
    add("--request-timeout", type=float, default=120.0, metavar="S",
        help="seconds a request may wait for and use the model (default 120; 503/504 beyond)")  # fmt: skip
    add("--queue-size", type=int, default=8, metavar="N",
        help="requests that may wait while one is inpainted (default 8; 503 beyond)")  # fmt: skip
    add("--max-uploads", type=int, default=16, metavar="N",
        help="request bodies held at once: received, waiting or inpainted (default 16; 503 beyond, "
        "before the body is read)")  # fmt: skip
    add("--read-timeout", type=float, default=30.0, metavar="S",
        help="close a connection whose request has sent no byte for S seconds (default 30)")  # fmt: skip
    serve.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from pconv.serve import ServeLimits, create_app
        from pconv.serve.connections import read_timeout_protocol
    except ImportError as error:
        raise CommandError(f"pconv serve needs {error.name}: pip install 'pconv[serve]'") from None
    from pconv.inference import Inpainter

    limits = ServeLimits(
        max_upload_bytes=round(args.max_upload_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
        request_timeout=args.request_timeout,
        queue_size=args.queue_size,
        max_uploads=args.max_uploads,
    )
    if args.read_timeout <= 0:
        raise CommandError(f"--read-timeout must be positive, got {args.read_timeout}")
    inpainter = Inpainter(args.weights, args.device, precision=args.precision)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"pconv serve: {inpainter!r}")
    print(f"pconv serve: open http://{host}:{args.port}/ (API docs at /docs); Ctrl+C stops")
    app = create_app(inpainter, limits)
    http = read_timeout_protocol(args.read_timeout)
    uvicorn.run(app, host=args.host, port=args.port, http=http, log_level="info")
    return 0


def _device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        from pconv.devices import cpu_description

        return f"CPU {cpu_description()}"
    return str(device)


def _run_info(args: argparse.Namespace) -> int:
    from pconv.environment import environment_report

    print(environment_report())
    return 0


class CommandError(Exception):
    """A user error a command reports as one line on stderr, with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.handler(args)
    except (CommandError, ValueError, OSError) as error:  # bad input: one line, no traceback
        print(f"pconv: error: {describe_error(error)}", file=sys.stderr)
        return 2


def describe_error(error: Exception) -> str:
    """One line for the user: OSErrors without their ``[Errno N]`` prefix, naming the file."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)
