"""Evaluating inpainting: run methods on cases, score composites, and report per hole-ratio bucket.

Every method's output is composited (known pixels from the ground truth, holes from
the method) and scored against the ground truth on the 0–255 scale: L1 in % of 255,
PSNR in dB with peak 255 and the MSE over all pixels and channels, SSIM as
scikit-image's ``structural_similarity(..., channel_axis=-1, data_range=255)``, and
detail (:func:`pconv.eval.detail`: the fill's luma gradient over the hole eroded by
4 px, as a fraction of the truth's; 1 for the truth). Tables hold the mean over the
cases of each bucket (and, on request, each border category); detail's mean leaves out
the cases where it is undefined (holes thinner than 9 px), and the JSON counts them.
A last table gives each method's L1 by distance from the hole border
(:func:`pconv.eval.border_band_l1`), over all cases: seams show in its first columns.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pconv.eval.baselines import BASELINES, get_baseline
from pconv.eval.cases import Case, load_case
from pconv.eval.metrics import BORDER_BANDS, border_band_l1, detail, l1_percent, psnr, ssim
from pconv.masks.buckets import BUCKETS

__all__ = [
    "METRICS",
    "Record",
    "comparison_grid",
    "evaluate",
    "get_method",
    "grid_cases",
    "markdown_report",
    "summarize",
    "write_json",
    "write_per_image",
]

#: Name, heading and number format of each metric, in table order.
METRICS = (
    ("l1", "L1 (%) ↓", "{:.2f}"),
    ("psnr", "PSNR (dB) ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("detail", "Detail in the hole (truth = 1)", "{:.2f}"),
)
#: Record fields of the L1 (%) in each of :data:`~pconv.eval.metrics.BORDER_BANDS`.
BAND_FIELDS = ("l1_band_1", "l1_band_2", "l1_band_3", "l1_band_4_8", "l1_band_over_8")

#: A method inpaints a batch: uint8 ``(H, W, 3)`` images and bool holes → uint8 images.
Method = Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class Record:
    """The scores of one method on one case (a row of ``--per-image``)."""

    image: str
    mask: str
    method: str
    bucket: int | None
    border: bool
    hole_ratio: float
    l1: float
    psnr: float
    ssim: float
    detail: float  # NaN where the eroded hole is empty
    l1_band_1: float  # L1 (%) of the hole pixels 1 px from the border; NaN where there are none
    l1_band_2: float
    l1_band_3: float
    l1_band_4_8: float
    l1_band_over_8: float


#: The pconv methods of :func:`get_method`: name → Inpainter options.
PCONV_METHODS = {
    "pconv": {},
    "pconv-noblend": {"blend": False},
    "pconv-refine": {"refine": True},
}


def get_method(name: str, device: str | None = None) -> Method:
    """``pconv`` (the default model), ``pconv:PATH`` (a weights or checkpoint file),
    ``pconv-noblend`` or ``pconv-noblend:PATH`` (the same without blending fills into the
    holes' borders, see :mod:`pconv.inference.blending`), ``pconv-refine`` or
    ``pconv-refine:PATH`` (fills refined with patch synthesis, see
    :mod:`pconv.inference.synthesis`) or a baseline name from
    :data:`pconv.eval.baselines.BASELINES`."""
    kind, _, path = name.partition(":")
    if kind in PCONV_METHODS:
        from pconv.inference import Inpainter

        inpainter = Inpainter(path or None, device, **PCONV_METHODS[kind])
        return lambda images, holes: inpainter.inpaint_batch(list(images), list(holes))
    if name not in BASELINES:
        pconv_methods = ", ".join(f"{method}[:PATH]" for method in PCONV_METHODS)
        raise ValueError(f"unknown method {name!r}; choose from {pconv_methods}, {', '.join(BASELINES)}")
    baseline = get_baseline(name)
    return lambda images, holes: [baseline(image, hole) for image, hole in zip(images, holes, strict=True)]


def score(truth: np.ndarray, composite: np.ndarray, holes: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of ``composite`` against ``truth``, both uint8 ``(N, H, W, 3)``, with bool
    ``holes`` ``(N, H, W)``: one float64 value per image and metric."""
    prediction = torch.from_numpy(composite).permute(0, 3, 1, 2).double()
    target = torch.from_numpy(truth).permute(0, 3, 1, 2).double()
    scores = {
        name: function(prediction, target, data_range=255.0).numpy()
        for name, function in (("l1", l1_percent), ("psnr", psnr), ("ssim", ssim))
    }
    hole = torch.from_numpy(holes)[:, None]
    bands = border_band_l1(prediction, target, hole, data_range=255.0).numpy()
    scores |= dict(zip(BAND_FIELDS, bands.T, strict=True))
    return scores | {"detail": detail(prediction, target, hole).numpy()}


def evaluate(
    cases: Sequence[Case],
    methods: dict[str, Method],
    *,
    size: int | None = None,
    batch_size: int = 8,
    keep: Iterable[int] = (),
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Record], dict[int, dict[str, np.ndarray]]]:
    """Score every method on every case.

    Cases are loaded ``batch_size`` at a time and every method sees the whole batch
    (the network inpaints it in one pass where the images share a size). Returns the
    records, and for the case indices in ``keep`` the images shown in a grid: the
    ground truth as ``"truth"``, the hole as ``"hole"`` and each method's composite.
    ``progress(n)`` is called after each batch with its number of cases.
    """
    keep, records, kept = set(keep), [], {}
    for start in range(0, len(cases), batch_size):
        batch = cases[start : start + batch_size]
        loaded = [load_case(case, size) for case in batch]
        by_shape = defaultdict(list)  # method calls and scoring need one size per stack
        for offset, (truth, _) in enumerate(loaded):
            by_shape[truth.shape].append(offset)
        for offsets in by_shape.values():
            truth = np.stack([loaded[i][0] for i in offsets])
            holes = np.stack([loaded[i][1] for i in offsets])
            for name, method in methods.items():
                outputs = np.stack(method(list(truth), list(holes)))
                composites = np.where(holes[..., None], outputs, truth)  # known pixels from the truth
                scores = score(truth, composites, holes)
                for row, i in enumerate(offsets):
                    case = batch[i]
                    values = {metric: float(scores[metric][row]) for metric in scores}
                    records.append(Record(str(case.image), str(case.mask), name, case.bucket, case.border,
                                          case.hole_ratio, **values))  # fmt: skip
                    if start + i in keep:
                        shown = kept.setdefault(start + i, {"truth": truth[row], "hole": holes[row]})
                        shown[name] = composites[row]
        if progress is not None:
            progress(len(batch))
    return records, kept


def summarize(records: Iterable[Record], by_border: bool = False) -> dict:
    """Mean scores: ``{method: {column: {"count", "l1", "psnr", "ssim", "detail", "detail_count",
    "l1_band_1", …}}}`` (``detail_count``: the cases that define detail; the band means
    are over the cases with pixels in the band).

    Columns are ``"1"``–``"6"`` (buckets) and ``"all"``; with ``by_border``, also
    ``"1/border"``, ``"1/no border"``, … for each bucket.
    """
    groups: dict[str, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        columns = ["all"]
        if record.bucket is not None:
            columns.append(str(record.bucket))
            if by_border:
                columns.append(f"{record.bucket}/{'border' if record.border else 'no border'}")
        for column in columns:
            groups[record.method][column].append(record)
    return {
        method: {column: _means(columns[column]) for column in sorted(columns, key=_column_order)}
        for method, columns in groups.items()
    }


def _means(rows: list[Record]) -> dict[str, float]:
    means = {}
    for metric in [name for name, _, _ in METRICS] + list(BAND_FIELDS):
        values = np.array([getattr(row, metric) for row in rows])
        defined = values[~np.isnan(values)]
        means[metric] = float(defined.mean()) if len(defined) else math.nan
    return {"count": len(rows), **means, "detail_count": sum(not math.isnan(row.detail) for row in rows)}


def _column_order(column: str) -> tuple:
    bucket, _, border = column.partition("/")
    return (bucket == "all", bucket, border)


def markdown_report(summary: dict, *, command: str | None = None, cases: int | None = None) -> str:
    """One Markdown table per metric: a row per method, a column per bucket (and ``all``)."""
    columns = sorted({column for by_column in summary.values() for column in by_column}, key=_column_order)
    headings = [_heading(column) for column in columns]
    lines = []
    if command:
        lines += [f"`{command}`", ""]
    if cases is not None:
        lines += [f"{cases} cases per method; composites scored against the ground truth.", ""]
    for metric, title, number in METRICS:
        lines += [f"**{title}**", "", "| method | " + " | ".join(headings) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        for method, by_column in summary.items():
            cells = [_cell(by_column.get(c, {}).get(metric, math.nan), number) for c in columns]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines + _band_table(summary))


def _band_table(summary: dict) -> list[str]:
    """L1 by distance from the hole border, over all cases: a row per method."""
    bands = [f"{name} px" for name, _, _ in BORDER_BANDS]
    lines = ["**L1 (%) ↓ by distance from the hole border, all cases**", ""]
    lines += ["| method | " + " | ".join(bands) + " |", "|---" * (len(bands) + 1) + "|"]
    for method, by_column in summary.items():
        cells = [_cell(by_column["all"][field], "{:.2f}") for field in BAND_FIELDS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cell(value: float, number: str) -> str:
    return "—" if math.isnan(value) else number.format(value)


def _heading(column: str) -> str:
    bucket, _, border = column.partition("/")
    if bucket == "all":
        return "all"
    low, high = BUCKETS[int(bucket)]
    return f"({low:g}, {high:g}]" + (f" {border}" if border else "")


def write_per_image(records: Iterable[Record], path: str | Path) -> None:
    """``--per-image``: one CSV row per case and method (full float precision)."""
    fields = list(Record.__dataclass_fields__)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        for record in records:
            writer.writerow({key: repr(value) if isinstance(value, float) else value
                             for key, value in asdict(record).items()})  # fmt: skip


def write_json(summary: dict, path: str | Path, **context) -> None:
    """``--json``: ``context`` (command, cases, ...) and the summary as ``"results"``; an
    undefined mean (NaN) is written as ``null``."""
    results = {
        method: {
            column: {k: None if v != v else v for k, v in means.items()}
            for column, means in by_column.items()
        }
        for method, by_column in summary.items()
    }
    Path(path).write_text(json.dumps({**context, "results": results}, indent=2, allow_nan=False) + "\n")


def grid_cases(cases: Sequence[Case]) -> list[int]:
    """The indices of the cases a ``--grid`` shows: one per bucket, in bucket order, taken
    from evenly spaced places in the list, so that (with the seeded pairing, where each
    image's cases are consecutive) each bucket's row shows a different image."""
    by_bucket = defaultdict(list)
    for index, case in enumerate(cases):
        by_bucket[case.bucket].append(index)
    buckets = sorted(by_bucket, key=lambda bucket: (bucket is None, bucket or 0))
    return [
        by_bucket[bucket][position * len(by_bucket[bucket]) // len(buckets)]
        for position, bucket in enumerate(buckets)
    ]


def comparison_grid(kept: dict[int, dict[str, np.ndarray]], methods: Sequence[str]) -> np.ndarray:
    """``--grid``: a uint8 RGB image with a row per kept case — the input with its hole
    in white, each method's composite, the ground truth — under a row of labels."""
    from PIL import Image, ImageDraw

    rows = []
    for shown in kept.values():
        masked = np.where(shown["hole"][..., None], 255, shown["truth"]).astype(np.uint8)
        rows.append(np.concatenate([masked, *(shown[name] for name in methods), shown["truth"]], axis=1))
    width = max(row.shape[1] for row in rows)
    body = np.concatenate([np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255)
                           for row in rows])  # fmt: skip
    header = Image.new("RGB", (width, 20), "white")
    draw = ImageDraw.Draw(header)
    tile = next(iter(kept.values()))["truth"].shape[1]
    labels = [name if ":" not in name else f"{name.partition(':')[0]}:{Path(name).name}" for name in methods]
    for column, label in enumerate(["input", *labels, "truth"]):
        draw.text((column * tile + 4, 4), label, fill="black")
    return np.concatenate([np.asarray(header), body])
