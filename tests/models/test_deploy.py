"""The deployment form (BN folded, channels-last, inference mode) scores as the eval-mode
model does, for every published architecture, and leaves the model it was given alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from avadet.errors import ConfigError
from avadet.models import PUBLISHED_MODELS, build_model
from avadet.models.deploy import (
    DeployedModel,
    cpu_supports_bf16,
    fold_batch_norms,
    prepare_for_inference,
)
from tests.models.conftest import randomize_weights

# name -> (model, Fast frames): width 8, 64x96 clips.
ARCHITECTURES = {
    "slowfast_32x2_r50": (lambda: PUBLISHED_MODELS["slowfast_32x2_r50"](width_per_group=8), 8),
    "slowfast_32x2_r101_50_50": (
        lambda: PUBLISHED_MODELS["slowfast_32x2_r101_50_50"](width_per_group=8), 8),
    "slow_8x8_r50": (lambda: PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8), 4),
    # MMAction2's layout: laterals without BN, Slow frames at an even stride, res5 undilated
    # with stride 1.
    "mmaction_style": (
        lambda: build_model(width_per_group=8, lateral_norm=False, slow_frames="stride",
                            res5_stride=1, res5_dilation=1, alpha=8, fusion_kernel_size=5),
        16),
}


def _inputs(frames: int):
    gen = torch.Generator().manual_seed(1)
    clip = torch.randn(2, 3, frames, 64, 96, generator=gen)
    boxes = torch.tensor([[0, 4.0, 6.0, 60.0, 50.0], [1, 10.0, 2.0, 90.0, 63.0],
                          [1, 30.5, 20.25, 70.0, 40.0]])
    return clip, boxes


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def arch(request):
    torch.manual_seed(0)
    make, frames = ARCHITECTURES[request.param]
    model = randomize_weights(make(), seed=3).eval()
    return request.param, model, frames


def test_deployed_scores_match_eval_mode(arch):
    name, model, frames = arch
    clip, boxes = _inputs(frames)
    with torch.no_grad():
        expected = model(clip, boxes, return_logits=True)
    deployed = prepare_for_inference(model)
    got = deployed(clip, boxes, return_logits=True)
    assert (got.scores - expected.scores).abs().max().item() <= 1e-4
    scale = expected.logits.abs().max().item()
    assert (got.logits - expected.logits).abs().max().item() <= 1e-4 * max(scale, 1.0)
    # The RoI features, which carry the whole backbone, to a relative 1e-4.
    scale = expected.features.abs().max().item()
    assert (got.features - expected.features).abs().max().item() <= 1e-4 * scale
    # The two-pathway models also take [slow, fast] (and Slow-only [clip]), as PySlowFast passes.
    pathways = model.backbone.pathways(clip)
    assert (deployed(pathways, boxes) - expected.scores).abs().max().item() <= 1e-4
    assert got.scores.dtype == torch.float32


def test_every_batch_norm_is_folded(arch):
    name, model, _ = arch
    deployed = prepare_for_inference(model)
    left = [n for n, m in deployed.named_modules() if isinstance(m, nn.BatchNorm3d)]
    assert left == []
    assert deployed.model.backbone.slow_stem.conv.weight.is_contiguous(
        memory_format=torch.channels_last_3d)


def test_the_given_model_is_untouched():
    torch.manual_seed(0)
    model = randomize_weights(PUBLISHED_MODELS["slowfast_32x2_r50"](width_per_group=8))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepare_for_inference(model)
    assert model.training
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules())


def test_copy_model_false_consumes_the_model():
    model = randomize_weights(PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)).eval()
    deployed = prepare_for_inference(model, copy_model=False)
    assert deployed.model is model
    assert not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert fold_batch_norms(model) == 0  # nothing left to fold


def test_deployed_model_refuses_training():
    deployed = prepare_for_inference(PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8))
    deployed.eval()  # allowed
    with pytest.raises(RuntimeError, match="inference only"):
        deployed.train()
    assert isinstance(deployed, DeployedModel)


def test_options_off_give_the_same_scores():
    model = randomize_weights(PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)).eval()
    clip, boxes = _inputs(4)
    with torch.no_grad():
        expected = model(clip, boxes)
    for kwargs in ({"fold_bn": False}, {"channels_last": False}):
        got = prepare_for_inference(model, **kwargs)(clip, boxes)
        assert (got - expected).abs().max().item() <= 1e-4


def test_bf16_only_where_supported(monkeypatch):
    model = PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)
    monkeypatch.setattr("avadet.models.deploy.cpu_supports_bf16", lambda: False)
    with pytest.raises(ConfigError, match="native bf16"):
        prepare_for_inference(model, dtype=torch.bfloat16)
    with pytest.raises(ConfigError, match="precision"):
        prepare_for_inference(model, dtype=torch.float16)


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16")
def test_bf16_scores_are_close_and_float32():
    model = randomize_weights(PUBLISHED_MODELS["slow_8x8_r50"](width_per_group=8)).eval()
    clip, boxes = _inputs(4)
    with torch.no_grad():
        expected = model(clip, boxes)
    got = prepare_for_inference(model, dtype=torch.bfloat16)(clip, boxes)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max().item() <= 5e-2


def test_torchscript_path_gives_the_same_scores():
    torch.manual_seed(0)
    model = randomize_weights(PUBLISHED_MODELS["slowfast_32x2_r101_50_50"](width_per_group=8)).eval()
    deployed = prepare_for_inference(model, torchscript=True)
    for frames, boxes_used in ((32, slice(None)), (32, slice(1, 2)), (8, slice(None))):
        clip, boxes = _inputs(frames)
        with torch.no_grad():
            expected = model(clip, boxes[boxes_used])
        got = deployed(clip, boxes[boxes_used])
        assert (got - expected).abs().max().item() <= 1e-4
    clip, boxes = _inputs(8)  # one clip of the batch of two it was traced with
    with torch.no_grad():
        expected = model(clip[1:], boxes[:1])
    assert (deployed(clip[1:], boxes[:1]) - expected).abs().max().item() <= 1e-4
    assert len(deployed._frozen) == 2  # one frozen graph per clip length
