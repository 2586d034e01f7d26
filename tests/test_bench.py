"""``pconv bench``: it runs every implementation, measures memory and reports ratios.

The speed and memory goals themselves are checked by running the benchmark (see
docs/performance.md), never by timed assertions.
"""

from __future__ import annotations

import json
import sys

import pytest
import torch

from pconv.bench import (
    IMPLEMENTATIONS,
    LayerCase,
    Measurement,
    NetworkCase,
    format_table,
    run_benchmark,
)
from pconv.cli import main
from pconv.models import PConvUNet
from pconv.reference import plain_unet

SMALL_LAYER = LayerCase(2, (16, 8), 16, 3, 1, 64)
SMALL_NETWORK = NetworkCase("tiny", 2, 64)


@pytest.fixture(scope="module")
def results() -> list[Measurement]:
    return run_benchmark([SMALL_LAYER], [SMALL_NETWORK], repeats=2, warmup=1)


def test_every_case_pass_and_implementation_is_measured(results):
    keys = {(r.case, r.pass_name, r.implementation) for r in results}
    cases = (SMALL_LAYER.name, SMALL_NETWORK.name)
    assert keys == {
        (c, p, i) for c in cases for p in ("forward", "forward+backward") for i in IMPLEMENTATIONS
    }
    assert all(len(r.round_seconds) == 2 and min(r.round_seconds) > 0 for r in results)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory is read from /proc (Linux)")
def test_cpu_peak_memory_counts_what_a_call_allocates(results):
    """Each forward allocates at least its output, 2×16×64×64 float32 for the layer."""
    layer_forward = [r for r in results if r.case == SMALL_LAYER.name and r.pass_name == "forward"]
    assert all(r.peak_bytes >= 2 * 16 * 64 * 64 * 4 for r in layer_forward)
    by_implementation = {r.implementation: r.peak_bytes for r in layer_forward}
    # The reference also makes a 16-channel mask and ratio; pconv's are one channel.
    assert by_implementation["reference"] > by_implementation["pconv"]


def test_table_reports_medians_and_per_round_ratios():
    def measurement(implementation: str, seconds: tuple[float, ...], peak: int | None) -> Measurement:
        return Measurement("case", "forward", implementation, seconds, peak)

    rows = [
        measurement("conv", (0.010, 0.020, 0.030), 2**20),
        measurement("reference", (0.030, 0.040, 0.060), 3 * 2**20),
        measurement("pconv", (0.011, 0.024, 0.030), None),
    ]
    assert rows[2].ratio_to(rows[0]) == pytest.approx(1.1)  # median of 1.1, 1.2, 1.0
    table = format_table(rows)
    assert "| case | forward | 20.0 | 40.0 (2.00×) | 24.0 (1.10×) | 1.0 | 3.0 (3.00×) | n/a |" in table


def test_plain_unet_has_the_shapes_of_the_partial_one():
    model = PConvUNet("tiny").eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert plain_unet(model, image).shape == model(image, torch.ones(1, 1, 64, 64))[0].shape


def test_command_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = [
        "bench",
        "--no-layers",
        "--presets",
        "tiny",
        "--sizes",
        "64",
        "--repeats",
        "1",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# pconv bench: torch")
    assert "| U-Net tiny depth 5 1×3×64² | forward+backward |" in printed
    rows = json.loads(out.read_text())
    assert {row["implementation"] for row in rows} == set(IMPLEMENTATIONS) and len(rows) == 6


def test_command_rejects_bad_counts(capsys):
    assert main(["bench", "--no-layers", "--presets", "tiny", "--sizes", "64", "--repeats", "0"]) == 2
    assert "--repeats" in capsys.readouterr().err
