"""Training and testing: the loops, checkpoints and distributed set-up that tie the data,
models and evaluation together. The top layer: nothing below imports it.

- :func:`train` (``avadet train``): :mod:`avadet.engine.trainer` (the loop),
  :mod:`avadet.engine.state` (the training state, saving and resuming it),
  :mod:`avadet.engine.step` (one iteration), :mod:`avadet.engine.actions` (periodic work);
- :func:`test` (``avadet test``) and :func:`run_inference`: :mod:`avadet.engine.inference`;
- the config boundary of the data (``cfg.data`` -> files, tables, dataset):
  :mod:`avadet.engine.build`;
- the checkpoint format: :mod:`avadet.engine.checkpoint`;
- the seed plan and sharding: :mod:`avadet.engine.sampler`; torchrun set-up:
  :mod:`avadet.engine.distributed`; optimiser, schedule, loss, BN: :mod:`avadet.engine.solver`.
"""

from avadet.engine.actions import EVAL_LOGGER
from avadet.engine.build import (
    SplitTables,
    build_dataset,
    class_ids_of,
    clip_cost_of,
    dataset_files,
    read_split_tables,
)
from avadet.engine.checkpoint import (
    latest_checkpoint,
    load_trained_model,
    read_training_checkpoint,
    save_checkpoint,
)
from avadet.engine.inference import (
    TestResult,
    evaluate_predictions,
    predict_boxes,
    run_inference,
    test,
    write_predictions,
)
from avadet.engine.trainer import (
    OutputDirInUse,
    RunFolderLocked,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    request_stop,
    train,
)

__all__ = [
    "request_stop",
    "EVAL_LOGGER",
    "OutputDirInUse",
    "RunFolderLocked",
    "SplitTables",
    "build_dataset",
    "clip_cost_of",
    "class_ids_of",
    "dataset_files",
    "read_split_tables",
    "TestResult",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "evaluate_predictions",
    "latest_checkpoint",
    "load_trained_model",
    "predict_boxes",
    "read_training_checkpoint",
    "run_inference",
    "save_checkpoint",
    "test",
    "train",
    "write_predictions",
]
