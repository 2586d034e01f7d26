"""Speed and memory of partial convolution against plain convolution (``pconv bench``).

Every case runs three implementations with the same weights and inputs:

- ``conv``: the same convolutions with no mask at all (for the U-Net: the same network
  with plain convolutions). This is the floor.
- ``reference``: partial convolution as the popular implementations write it
  (:func:`pconv.reference.reference_partial_conv`): a mask with one channel per feature channel,
  convolved in every layer with a ``C_out×C_in×kh×kw`` kernel of ones.
- ``pconv``: :class:`pconv.PartialConv2d` and :class:`pconv.PConvUNet`.

Each runs forward (inference mode; the U-Net in eval mode) and forward+backward
(gradients for the weights and, except for a layer fed by the image, for its input;
the U-Net in train mode). Times are medians over repetitions after warm-up.
Peak memory is measured once per run: on CUDA the allocator's peak, on Linux CPUs the
process's peak resident memory above its level before the run. Ratios are to ``conv``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from pconv.heap import give_back_free_memory, map_large_allocations
from pconv.layers import PartialConv2d
from pconv.masks.generate import generate_mask
from pconv.models import PConvUNet, get_preset
from pconv.reference import plain_unet, reference_partial_conv, reference_unet

__all__ = [
    "IMPLEMENTATIONS",
    "PAPER_LAYERS",
    "PAPER_NETWORKS",
    "LayerCase",
    "Measurement",
    "NetworkCase",
    "format_table",
    "random_mask",
    "run_benchmark",
]

IMPLEMENTATIONS = ("conv", "reference", "pconv")


@dataclass(frozen=True)
class LayerCase:
    """One partial-convolution layer: ``batch×in_parts→out_channels``, kernel, stride, input size.

    ``in_parts`` has one entry per concatenated input (two for a decoder layer: the
    upsampled features and the skip connection), each with its own mask channel.
    ``bias`` is False where batch norm follows the layer in the U-Net.
    """

    batch: int
    in_parts: tuple[int, ...]
    out_channels: int
    kernel: int
    stride: int
    size: int
    bias: bool = False

    @property
    def name(self) -> str:
        parts = "+".join(str(c) for c in self.in_parts)
        return f"{self.batch}×{parts}→{self.out_channels} k{self.kernel} s{self.stride} @ {self.size}²"

    @property
    def fed_by_image(self) -> bool:
        """The first layer: its input is the image, which needs no gradient."""
        return self.in_parts == (3,)


#: The paper's layer shapes: its first layer, an encoder layer, a deep 3×3 layer, a
#: deep decoder layer after a skip concatenation, and a wide decoder layer at 256².
PAPER_LAYERS = (
    LayerCase(1, (3,), 64, 7, 2, 512, bias=True),
    LayerCase(4, (64,), 128, 5, 2, 256),
    LayerCase(4, (512,), 512, 3, 1, 32),
    LayerCase(4, (512, 512), 512, 3, 1, 32),
    LayerCase(4, (128, 64), 64, 3, 1, 256),
)


@dataclass(frozen=True)
class NetworkCase:
    """A whole :class:`~pconv.PConvUNet` on ``batch×3×size²``.

    ``depth`` defaults to the preset's, reduced so that the bottleneck is at least
    2×2 (batch norm needs more than one value per channel to train): 7 for the
    paper's network at 256², 8 at 512², as in the paper.
    """

    preset: str
    batch: int
    size: int
    depth: int | None = None

    @property
    def levels(self) -> int:
        """The depth used."""
        if self.depth is not None:
            return self.depth
        return min(get_preset(self.preset).depth, self.size.bit_length() - 2)

    @property
    def name(self) -> str:
        return f"U-Net {self.preset} depth {self.levels} {self.batch}×3×{self.size}²"


#: The paper's network at its two training sizes.
PAPER_NETWORKS = (NetworkCase("paper", 1, 256), NetworkCase("paper", 1, 512))


@dataclass(frozen=True)
class Measurement:
    """One implementation on one case and pass.

    ``round_seconds`` has one time per round (see :func:`run_benchmark`); ``peak_bytes``
    is ``None`` where memory cannot be measured.
    """

    case: str
    pass_name: str
    implementation: str
    round_seconds: tuple[float, ...]
    peak_bytes: int | None

    @property
    def seconds(self) -> float:
        """Median time of one call."""
        return statistics.median(self.round_seconds)

    def ratio_to(self, floor: Measurement) -> float:
        """Median over rounds of this time over ``floor``'s time in the same round."""
        return statistics.median(t / f for t, f in zip(self.round_seconds, floor.round_seconds, strict=True))


def random_mask(batch: int, channels: int, size: int, device: torch.device, seed: int = 0) -> Tensor:
    """``(batch, channels, size, size)`` float mask of irregular holes (hole-ratio bucket 3), 1 = known."""
    holes = [generate_mask(size, size, bucket=3, seed=seed + i) for i in range(batch * channels)]
    known = ~np.stack(holes).reshape(batch, channels, size, size)
    return torch.from_numpy(known).float().to(device)


def run_benchmark(
    layers: Iterable[LayerCase] = PAPER_LAYERS,
    networks: Iterable[NetworkCase] = PAPER_NETWORKS,
    *,
    device: torch.device | str = "cpu",
    autocast: torch.dtype | None = None,
    channels_last: bool = False,
    repeats: int = 5,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Time and measure every case's three implementations; see the module docstring.

    ``autocast`` (bf16/fp16) and ``channels_last`` apply to all three alike. All
    timings run before any memory measurement (which changes the allocator's
    settings, see :func:`_release_free_memory`). ``progress`` is called with each
    case's name before it runs.
    """
    device = torch.device(device)
    cases = [(case.name, _layer_runs(case, device, channels_last)) for case in layers]
    cases += [(case.name, _network_runs(case, device, channels_last)) for case in networks]

    def autocast_context():
        return torch.autocast(device.type, autocast) if autocast is not None else nullcontext()

    times = {}
    for name, runs in cases:
        if progress is not None:
            progress(f"timing {name}")
        for pass_name, calls in runs.items():
            with autocast_context():
                times[name, pass_name] = _round_seconds(calls, device, repeats, warmup)
    results = []
    for name, runs in cases:
        if progress is not None:
            progress(f"memory {name}")
        for pass_name, calls in runs.items():
            for impl, call in calls.items():
                with autocast_context():
                    peak = _peak_bytes(call, device)
                results.append(Measurement(name, pass_name, impl, tuple(times[name, pass_name][impl]), peak))
    return results


def _layer_runs(case: LayerCase, device: torch.device, channels_last: bool) -> dict[str, dict[str, Callable]]:
    """The ``{pass: {implementation: call}}`` of one layer case."""
    torch.manual_seed(0)
    in_channels = sum(case.in_parts)
    groups = case.in_parts if len(case.in_parts) > 1 else None
    layer = PartialConv2d(
        in_channels, case.out_channels, case.kernel, case.stride, case.kernel // 2, bias=case.bias,
        mask_groups=groups,
    ).to(device)  # fmt: skip
    x = torch.randn(case.batch, in_channels, case.size, case.size, device=device)
    mask = random_mask(case.batch, len(case.in_parts), case.size, device)
    full_mask = mask.repeat_interleave(torch.tensor(case.in_parts, device=device), dim=1)
    if channels_last:
        layer, x, mask, full_mask = (
            t.to(memory_format=torch.channels_last) for t in (layer, x, mask, full_mask)
        )
    x.requires_grad_(not case.fed_by_image)
    ones = torch.ones_like(layer.weight, requires_grad=False)
    forwards = {
        "conv": lambda: layer._conv_forward(x, layer.weight, layer.bias),
        "reference": lambda: reference_partial_conv(x, full_mask, layer, ones)[0],
        "pconv": lambda: layer(x, mask)[0],
    }
    return _passes(forwards, [layer.weight, layer.bias, x])


def _network_runs(
    case: NetworkCase, device: torch.device, channels_last: bool
) -> dict[str, dict[str, Callable]]:
    """The ``{pass: {implementation: call}}`` of one U-Net case."""
    torch.manual_seed(0)
    model = PConvUNet(case.preset, case.levels).to(device)
    image = torch.rand(case.batch, 3, case.size, case.size, device=device)
    mask = random_mask(case.batch, 1, case.size, device)
    if channels_last:
        model, image, mask = (t.to(memory_format=torch.channels_last) for t in (model, image, mask))
    ones = {conv: torch.ones_like(conv.weight) for conv in model.modules() if isinstance(conv, PartialConv2d)}
    forwards = {
        "conv": lambda: plain_unet(model, image),
        "reference": lambda: reference_unet(model, image, mask, ones=ones),
        "pconv": lambda: model(image, mask)[0],
    }
    return _passes(forwards, list(model.parameters()), model=model)


def _passes(
    forwards: dict[str, Callable[[], Tensor]],
    parameters: Sequence[Tensor | None],
    *,
    model: nn.Module | None = None,
) -> dict[str, dict[str, Callable[[], None]]]:
    """Forward (inference mode) and forward+backward calls for each implementation."""
    leaves = [p for p in parameters if p is not None and p.requires_grad]
    with torch.no_grad():
        output = forwards["conv"]()
    noise = torch.randn(output.shape, generator=torch.Generator().manual_seed(1))
    grad_out = torch.empty_like(output).copy_(noise)  # in the output's memory format

    def forward(call: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            if model is not None:
                model.eval()
            with torch.inference_mode():
                call()

        return run

    def forward_backward(call: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            if model is not None:
                model.train()
            torch.autograd.grad(call(), leaves, grad_out)  # returned, not accumulated: no state

        return run

    return {
        "forward": {impl: forward(call) for impl, call in forwards.items()},
        "forward+backward": {impl: forward_backward(call) for impl, call in forwards.items()},
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _round_seconds(
    calls: dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Wall times of each call in ``repeats`` rounds, after ``warmup`` untimed calls each.

    In every round each implementation runs once untimed (so that the allocator is in
    its own steady state, not in the one the previous implementation left) and once
    timed. The implementations take turns round by round, so that drift in the
    machine's speed, which on shared machines is tens of percent over seconds, hits
    them alike and per-round ratios cancel it.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {impl: [] for impl in calls}
    for _ in range(repeats):
        for impl, call in calls.items():
            call()
            _synchronize(device)
            start = time.perf_counter()
            call()
            _synchronize(device)
            times[impl].append(time.perf_counter() - start)
    return times


def _peak_bytes(call: Callable[[], None], device: torch.device) -> int | None:
    """Peak memory of one ``call()`` above the level before it; ``None`` where unmeasurable."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        return None
    _release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak resident size (Linux)
    except OSError:
        return None
    before = _proc_status_bytes("VmRSS")
    call()
    return _proc_status_bytes("VmHWM") - before


def _release_free_memory() -> None:
    """Make glibc return freed memory to the system, now and (allocations ≥ 64 KiB) later.

    Otherwise freed tensors stay resident in the heap and a later run reuses them
    without raising the resident peak, which would under-count its memory. Timings
    run before any memory measurement, under glibc's default settings.
    """
    map_large_allocations(64 * 1024)
    give_back_free_memory()


def _proc_status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def format_table(results: Sequence[Measurement]) -> str:
    """A Markdown table: one row per case and pass, median times in ms and peaks in MB.

    Time ratios to ``conv`` are medians of per-round ratios; memory ratios are of the peaks.
    """
    header = (
        "| case | pass | conv ms | reference ms | pconv ms | conv MB | reference MB | pconv MB |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|"
    )
    rows = []
    for (case, pass_name), group in _grouped(results).items():
        floor = group["conv"]
        cells = [f"{floor.seconds * 1e3:.1f}"]
        cells += [
            f"{group[i].seconds * 1e3:.1f} ({group[i].ratio_to(floor):.2f}×)" for i in IMPLEMENTATIONS[1:]
        ]
        cells += [_megabytes(floor.peak_bytes)]
        cells += [_megabytes(group[i].peak_bytes, floor.peak_bytes) for i in IMPLEMENTATIONS[1:]]
        rows.append(f"| {case} | {pass_name} | " + " | ".join(cells) + " |")
    return "\n".join([header, *rows])


def _grouped(results: Sequence[Measurement]) -> dict[tuple[str, str], dict[str, Measurement]]:
    groups: dict[tuple[str, str], dict[str, Measurement]] = {}
    for result in results:
        groups.setdefault((result.case, result.pass_name), {})[result.implementation] = result
    return groups


def _megabytes(peak: int | None, floor: int | None = None) -> str:
    if peak is None:
        return "n/a"
    megabytes = peak / 2**20
    text = f"{megabytes:.1f}" if megabytes < 10 else f"{megabytes:.0f}"
    if floor:
        text += f" ({peak / floor:.2f}×)"
    return text
