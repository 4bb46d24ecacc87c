"""The recipe's parts: learning-rate schedule, optimiser groups, frozen and precise BN, the
seed plan's sampling, and Kinetics initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from avadet.config import SolverConfig, load_config
from avadet.data import collate
from avadet.engine import build_dataset, train
from avadet.engine.checkpoint import read_training_checkpoint
from avadet.engine.sampler import SeedPlanBatchSampler, ShardSampler
from avadet.engine.solver import (
    build_optimizer,
    check_solver,
    scheduled_lr,
    set_train_mode,
    update_precise_bn,
)
from avadet.errors import ConfigError
from avadet.models import build_model


def test_steps_with_relative_lrs_and_linear_warmup():
    s = SolverConfig(base_lr=0.1, schedule="steps", steps=[0, 10, 15, 20], lrs=[1, 0.1, 0.01, 0.001],
                     max_epoch=20, warmup_epochs=5, warmup_start_lr=0.000125)
    assert scheduled_lr(s, 0.0) == pytest.approx(0.000125)
    # Linear from warmup_start_lr to the schedule's value at the end of the warm-up.
    assert scheduled_lr(s, 2.5) == pytest.approx(0.000125 + (0.1 - 0.000125) / 2)
    assert scheduled_lr(s, 5.0) == pytest.approx(0.1)
    assert scheduled_lr(s, 9.99) == pytest.approx(0.1)
    assert scheduled_lr(s, 10.0) == pytest.approx(0.01)
    assert scheduled_lr(s, 17.0) == pytest.approx(0.001)
    # Without lrs: lr_decay ** step index.
    s2 = SolverConfig(base_lr=1.0, steps=[0, 2, 4], lrs=[], lr_decay=0.5, warmup_epochs=0, max_epoch=6)
    assert [scheduled_lr(s2, e) for e in (0, 2, 4.5)] == [1.0, 0.5, 0.25]


def test_cosine_schedule_ends_at_cosine_end_lr():
    s = SolverConfig(base_lr=0.2, schedule="cosine", max_epoch=10, warmup_epochs=0, cosine_end_lr=0.002)
    assert scheduled_lr(s, 0) == pytest.approx(0.2)
    assert scheduled_lr(s, 5) == pytest.approx(0.002 + (0.2 - 0.002) / 2)
    assert scheduled_lr(s, 10) == pytest.approx(0.002)
    assert math.isclose(scheduled_lr(s, 12), 0.002)


@pytest.mark.parametrize("change, message", [
    ({"schedule": "poly"}, "solver.schedule"),
    ({"steps": [1, 5]}, "start at epoch 0"),
    ({"steps": [0, 5, 5]}, "must increase"),
    ({"lrs": [1, 0.1]}, "solver.lrs has 2 values"),
    ({"optimizer": "lamb"}, "solver.optimizer"),
    ({"warmup_epochs": 30.0}, "warmup_epochs"),
])
def test_bad_solver_settings_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        check_solver(SolverConfig(**change))


def test_batchnorm_parameters_get_their_own_weight_decay():
    model = build_model(width_per_group=8, num_classes=3)
    opt = build_optimizer(model, SolverConfig(weight_decay=1e-4, bn_weight_decay=0.0, nesterov=True))
    decays = [g["weight_decay"] for g in opt.param_groups]
    assert decays == [1e-4, 0.0]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def _clips(n: int = 2):
    torch.manual_seed(1)
    inputs = [torch.randn(n, 3, 2, 32, 32), torch.randn(n, 3, 8, 32, 32)]
    boxes = torch.tensor([[i, 2.0, 2.0, 28.0, 30.0] for i in range(n)])
    return inputs, boxes


def test_frozen_bn_keeps_running_statistics_and_trains_the_rest():
    model = build_model(width_per_group=8, num_classes=3, dropout=0.5)
    set_train_mode(model, freeze_bn=True)
    bn = model.backbone.modules()
    bns = [m for m in bn if isinstance(m, torch.nn.BatchNorm3d)]
    assert bns and not any(m.training for m in bns)
    assert model.head.dropout.training  # everything else trains
    before = [m.running_mean.clone() for m in bns]
    inputs, boxes = _clips()
    model(inputs, boxes).sum().backward()
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, bns))
    assert bns[0].weight.grad is not None  # affine parameters still learn
    set_train_mode(model, freeze_bn=False)
    assert all(m.training for m in bns)


def test_precise_bn_is_the_mean_of_the_batch_statistics():
    model = build_model(width_per_group=8, num_classes=3)
    first = model.backbone.modules()
    stem_bn = next(m for m in first if isinstance(m, torch.nn.BatchNorm3d))
    captured = []
    handle = stem_bn.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach()))
    batches = [_clips(), _clips(2)]
    batches[1][0][0].mul_(3.0)  # a second batch with other statistics
    rng_before = torch.get_rng_state()
    assert update_precise_bn(model, batches) == 2
    handle.remove()
    want = torch.stack([x.mean(dim=(0, 2, 3, 4)) for x in captured]).mean(0)
    assert torch.allclose(stem_bn.running_mean, want, atol=1e-6)
    assert stem_bn.momentum == 0.1 and not model.training
    assert torch.equal(torch.get_rng_state(), rng_before)  # dropout stayed off: nothing drawn


def test_ranks_split_each_global_batch_exactly():
    one = SeedPlanBatchSampler(23, 6, seed=3)
    ranks = [SeedPlanBatchSampler(23, 6, seed=3, rank=r, world_size=3) for r in range(3)]
    for epoch in (0, 1):
        one.set_epoch(epoch)
        for s in ranks:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in ranks]
        for i, batch in enumerate(one):
            union = [x for r in range(3) for x in per_rank[r][i]]
            assert sorted(union) == sorted(batch) and len(set(batch)) == 6
    assert len(one) == 3  # 23 // 6, the incomplete batch dropped
    one.set_epoch(0)
    e0 = list(one)
    one.set_epoch(1)
    assert list(one) != e0  # a new order each epoch
    one.set_epoch(0, start=2)
    assert list(one) == e0[2:]  # resuming skips the consumed batches
    with pytest.raises(ConfigError, match="not a multiple"):
        SeedPlanBatchSampler(23, 6, seed=0, rank=0, world_size=4)
    with pytest.raises(ConfigError, match="fewer than solver.batch_size"):
        SeedPlanBatchSampler(3, 6, seed=0)
    shards = [list(ShardSampler(10, 3, rank=r, world_size=3)) for r in range(3)]
    assert sorted(x for s in shards for b in s for x in b) == list(range(10))


def test_inference_batches_never_mix_videos():
    # Frames of different videos may differ in size: padded into one batch, they would be
    # scored differently from alone (and from PySlowFast's and MMAction2's test paths).
    videos = ["a"] * 5 + ["b"] * 2 + ["a"] + ["c"] * 4
    sampler = ShardSampler(len(videos), 3, groups=videos)
    batches = list(sampler)
    assert batches == [[0, 1, 2], [3, 4], [5, 6], [7], [8, 9, 10], [11]]
    assert len(sampler) == len(batches)
    assert all(len({videos[i] for i in b}) == 1 for b in batches)
    shards = [list(ShardSampler(len(videos), 4, rank=r, world_size=2, groups=videos))
              for r in range(2)]
    assert sorted(x for s in shards for b in s for x in b) == list(range(len(videos)))
    assert list(ShardSampler(0, 3, groups=[])) == []


def _batches(dataset, sampler, workers):
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
    return [(b.clips, b.boxes) for b in loader]


def test_seed_plan_makes_augmentation_independent_of_workers_and_order(tiny_root):
    cfg = load_config(tiny_root / "config.yaml", ["data.train_color_jitter=true"])
    dataset = build_dataset(cfg, "train")
    dataset.set_seed_plan(5, epoch=2)
    sampler = SeedPlanBatchSampler(len(dataset), 4, seed=5)
    sampler.set_epoch(2)
    np.random.seed(0)
    a = _batches(dataset, sampler, workers=0)
    np.random.seed(123)  # the global generator plays no part
    b = _batches(dataset, sampler, workers=2)
    for (xa, ba), (xb, bb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ba, bb)
    # Item 3 alone, read out of order, is the same clip as inside its batch.
    again = dataset[3].clip
    assert torch.equal(again, dataset[3].clip)
    dataset.set_seed_plan(5, epoch=3)
    assert not torch.equal(again, dataset[3].clip)  # another epoch, another draw


def test_kinetics_checkpoint_initialises_the_backbone(tiny_root, tmp_path):
    cfg = load_config(tiny_root / "config.yaml")
    torch.manual_seed(42)
    kinetics = build_model(cfg.model, head="kinetics", num_classes=400, res5_dilation=1)
    path = tmp_path / "kinetics.pt"
    torch.save({"model_state": kinetics.state_dict()}, path)
    out = tmp_path / "run"
    cfg = load_config(tiny_root / "config.yaml", [
        f"train.output_dir={out}", f"train.init_checkpoint={path}", "solver.max_iters=1",
        "train.eval_every_epochs=0", "solver.base_lr=1e-12", "solver.warmup_start_lr=1e-12",
        "solver.weight_decay=0",
    ])
    result = train(cfg)
    # The load report: a note for the user (the command line prints it) and in log.txt.
    noted = "\n".join(result.notes)
    assert "initialised from" in noted and "head tensors left fresh" in noted
    assert "head tensors left fresh" in (out / "log.txt").read_text()
    state = read_training_checkpoint(out / "checkpoints" / "model_final.pt")["model_state"]
    source = kinetics.state_dict()
    weights = [k for k in state if k.startswith("backbone.") and k.endswith("conv.weight")]
    assert weights and all(torch.allclose(state[k], source[k], atol=1e-6) for k in weights)
    assert state["head.projection.weight"].shape == (8, source["head.projection.weight"].shape[1])
