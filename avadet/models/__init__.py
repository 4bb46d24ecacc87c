"""SlowFast / Slow-only backbones, the AVA RoI head and the Kinetics head, and checkpoint
loading (PySlowFast ``.pyth`` and Caffe2 pickles, pytorchvideo state dicts).

Three lines, no config::

    model = ActionModel(SlowFast(depth=50, alpha=4, beta_inv=8),
                        AVAHead(in_channels=(2048, 256), num_classes=80))
    scores = model(clip, boxes)  # (K, 80); clip (N, 3, 32, H, W), boxes (K, 5) in input pixels

Or from a config: :func:`build_model`; a published model by name: :func:`slowfast_32x2_r50`
and the others in :data:`PUBLISHED_MODELS`; from a PySlowFast checkpoint:
:func:`build_model_from_checkpoint`; from an MMAction2 AVA checkpoint: :func:`mmaction_settings`
then :func:`build_model` and :func:`load_checkpoint`; a published checkpoint by name
(downloaded once into torch hub's cache): :func:`resolve_checkpoint` over the model zoo
:data:`ZOO`. See docs/models.md and docs/model_zoo.md.
"""

from avadet.models.build import (
    build_backbone,
    build_model,
    config_from_pyslowfast_cfg,
    pyslowfast_data_settings,
)
from avadet.models.checkpoint import (
    LoadReport,
    build_model_from_checkpoint,
    load_checkpoint,
    model_config_from_checkpoint,
    read_checkpoint,
)
from avadet.models.checkpoint_mmaction import mmaction_settings
from avadet.models.flops import FlopCount, count_conv_flops, pathway_shares
from avadet.models.heads import ActionModel, AVAHead, HeadOutput, KineticsHead
from avadet.models.published import (
    PUBLISHED_MODELS,
    published_config,
    slow_8x8_r50,
    slowfast_32x2_r50,
    slowfast_32x2_r101_50_50,
    slowfast_r50_detection,
)
from avadet.models.resnet3d import Bottleneck, NonLocal, ResStage, Stem
from avadet.models.slowfast import FastOnly, Lateral, SlowFast, SlowOnly, slow_pathway_positions
from avadet.models.weight_init import init_weights
from avadet.models.zoo import ZOO, ResolvedCheckpoint, ZooEntry, resolve_checkpoint

__all__ = [
    "ActionModel",
    "AVAHead",
    "Bottleneck",
    "FlopCount",
    "HeadOutput",
    "KineticsHead",
    "Lateral",
    "LoadReport",
    "NonLocal",
    "PUBLISHED_MODELS",
    "published_config",
    "ResStage",
    "ResolvedCheckpoint",
    "SlowFast",
    "SlowOnly",
    "FastOnly",
    "Stem",
    "ZOO",
    "ZooEntry",
    "build_backbone",
    "build_model",
    "init_weights",
    "build_model_from_checkpoint",
    "config_from_pyslowfast_cfg",
    "pyslowfast_data_settings",
    "count_conv_flops",
    "load_checkpoint",
    "mmaction_settings",
    "model_config_from_checkpoint",
    "pathway_shares",
    "read_checkpoint",
    "resolve_checkpoint",
    "slow_8x8_r50",
    "slow_pathway_positions",
    "slowfast_32x2_r101_50_50",
    "slowfast_32x2_r50",
    "slowfast_r50_detection",
]
