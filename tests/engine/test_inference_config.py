"""The one rule of what a checkpoint owns, shared by ``avadet test`` and ``avadet detect``."""

from __future__ import annotations

import dataclasses

from avadet.config import load_config
from avadet.engine.checkpoint import CHECKPOINT_DATA_KEYS, inference_config


def test_the_checkpoint_owns_the_model_and_its_sampling_the_user_the_rest():
    trained = load_config(None, ["model.alpha=8", "model.depth=101", "data.num_frames=16",
                                 "data.sampling_rate=4", "data.mean=[0.4,0.4,0.4]",
                                 "data.test_short_side=224", "data.fps=30"])
    user = load_config(None, ["data.root=/elsewhere", "data.test_short_side=320",
                              "data.test_detection_score=0.6", "data.fps=25",
                              "data.num_frames=64", "model.alpha=2", "test.batch_size=2"])
    cfg, ignored = inference_config(trained, user)
    assert cfg.model == trained.model
    assert (cfg.data.num_frames, cfg.data.sampling_rate, cfg.data.mean) == (16, 4, [0.4] * 3)
    assert cfg.data.std == trained.data.std
    # inference settings and the data's own description are the user's
    assert (cfg.data.root, cfg.data.test_short_side, cfg.data.test_detection_score,
            cfg.data.fps, cfg.test.batch_size) == ("/elsewhere", 320, 0.6, 25.0, 2)
    # What the user set and the checkpoint overrules is named; what the user left at avadet's
    # defaults (model.depth, data.sampling_rate, data.mean) is not the user's to be warned of.
    assert set(ignored) == {"model.alpha", "data.num_frames"}


def test_nothing_is_ignored_when_the_user_asks_for_what_the_checkpoint_has():
    trained = load_config(None, ["data.num_frames=16", "model.arch=slow"])
    user = dataclasses.replace(trained, data=dataclasses.replace(trained.data, root="/x"))
    cfg, ignored = inference_config(trained, user)
    assert ignored == [] and cfg.data.root == "/x"
    assert set(CHECKPOINT_DATA_KEYS) == {"num_frames", "sampling_rate", "mean", "std"}
