"""Fixtures shared by several test files: small models and weights the suite builds itself."""

from __future__ import annotations

import pytest
import torch

from pconv import PConvUNet
from pconv.weights import save_weights


def _trained_looking_tiny_model(seed: int = 0) -> PConvUNet:
    """A seeded ``tiny`` model in eval mode with non-default batch-norm statistics."""
    torch.manual_seed(seed)
    model = PConvUNet("tiny")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.fixture
def tiny_model() -> PConvUNet:
    return _trained_looking_tiny_model()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """The :func:`tiny_model` as a safetensors weights file."""
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    return save_weights(_trained_looking_tiny_model(), path)


@pytest.fixture(
    params=[
        "cpu",
        pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
    ]
)
def autocast_device(request) -> str:
    """Each device autocast tests run on: the CPU always, CUDA where there is one."""
    return request.param
