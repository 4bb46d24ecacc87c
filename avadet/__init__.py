"""avadet: spatio-temporal action detection on AVA.

The package follows the pipeline's stages (docs/architecture.md is the map of what each owns
and may import):

- :mod:`avadet.errors`, :mod:`avadet.boxes`, :mod:`avadet.config`: the errors users act on,
  AVA's box conventions (columns, pixels, IoU), the typed config.
- :mod:`avadet.io`: AVA file formats (annotation/prediction/box CSVs, label maps, exclusions,
  frame lists) read and validated with pandas, and atomic writes.
- :mod:`avadet.data`: clip sources (JPEG folders, video files), keyframe sampling, box-aware
  transforms, the AVA dataset.
- :mod:`avadet.synthetic`: the seeded synthetic AVA-format dataset generator.
- :mod:`avadet.persons`: person detectors that put boxes on keyframes.
- :mod:`avadet.models`: SlowFast / Slow-only backbones, the RoI action head, checkpoint loading.
- :mod:`avadet.evaluation`: the official-protocol frame-mAP evaluator.
- :mod:`avadet.engine`: training and testing loops, checkpoints, distributed set-up.
- :mod:`avadet.detect`, :mod:`avadet.doctor`, :mod:`avadet.prep`: detection on a video, data
  checks, preparing real AVA.
- :mod:`avadet.api`: the use cases as functions (train, test, evaluate, detect, check data,
  the demo).
- :mod:`avadet.commands`, :mod:`avadet.cli`: the ``avadet`` command line over them.
"""

__version__ = "0.1.0"
