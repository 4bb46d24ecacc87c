"""Shared helpers for the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def randomize_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN gains, biases and statistics (libraries zero-init the last BN of each
    block, which would make every residual branch output zero in eval mode)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * 0.02)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.5)
    return model


def check_reference_outputs(model: nn.Module, io: dict) -> None:
    """``model`` in eval mode reproduces a PySlowFast reference ``*_io.pt``: scores, logits
    and RoI features to a relative 1e-5."""
    model.eval()
    with torch.no_grad():
        out = model(io["inputs"], io["boxes"], return_logits=True)
    ref = io["outputs"]
    for mine, theirs in ((out.scores, ref["scores"]), (out.logits, ref["logits"]), (out.features, ref["roi_features"])):
        assert mine.shape == theirs.shape
        assert (mine - theirs).abs().max().item() <= 1e-5 * max(1.0, theirs.abs().max().item())


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def randomize():
    return randomize_weights


@pytest.fixture
def check_outputs():
    return check_reference_outputs
