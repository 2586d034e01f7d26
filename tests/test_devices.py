"""Device, precision and memory-format choices, with faked processor capabilities."""

from __future__ import annotations

import pytest
import torch

from pconv.devices import autocast_dtype, cpu_flags, cpu_unet_memory_format, training_compute

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "dtype", "memory_format"),
    [
        ({"avx2", "avx512f", "amx_bf16", "amx_tile"}, torch.bfloat16, torch.channels_last),  # Xeon with AMX
        ({"avx2", "avx512f", "avx512_bf16"}, torch.bfloat16, torch.channels_last),  # Zen 4, Cooper Lake
        ({"avx2", "fma"}, torch.float32, torch.contiguous_format),  # AVX2-only EPYC: both are slower there
        ({"avx2", "avx512f"}, torch.float32, torch.channels_last),  # Skylake-SP: AVX-512 without bf16
        ({"asimd", "fphp"}, torch.float32, torch.contiguous_format),  # an Arm CPU
        (set(), torch.float32, torch.contiguous_format),  # nothing known
    ],
)
def test_auto_training_precision_follows_the_cpu(flags, dtype, memory_format):
    choice = training_compute("auto", CPU, flags)
    assert choice.dtype == dtype and choice.memory_format == memory_format
    assert cpu_unet_memory_format(flags) == memory_format  # inference's, too
    record = choice.to_dict()
    assert record["precision"] == ("bf16 autocast" if dtype == torch.bfloat16 else "fp32")
    assert record["memory_format"] == (
        "channels_last" if memory_format == torch.channels_last else "contiguous"
    )
    assert ("has amx_bf16" in choice.describe() or "has avx512_bf16" in choice.describe()) == (
        dtype == torch.bfloat16
    )


def test_an_explicit_precision_wins_over_the_cpu():
    assert training_compute("fp32", CPU, {"amx_bf16", "avx2"}).dtype == torch.float32
    assert training_compute("bf16", CPU, {"avx2"}).dtype == torch.bfloat16


def test_cuda_and_inference_choices_are_unchanged():
    cuda = training_compute("bf16", torch.device("cuda"), flags=set())
    assert cuda.dtype == torch.bfloat16 and cuda.memory_format == torch.channels_last
    assert training_compute("fp16", torch.device("cuda"), {"amx_bf16"}).dtype == torch.float16
    # Inference keeps fp32 on every CPU (its memory format follows the CPU: test_inpainter).
    assert autocast_dtype("auto", CPU) == torch.float32


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\nflags : x\n"
    )
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # Arm
    assert cpu_flags(cpuinfo) == {"fp", "asimd", "bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()
