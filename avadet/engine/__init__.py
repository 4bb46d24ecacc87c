"""Training and testing: the loops, checkpoints and distributed set-up that tie the data,
models and evaluation together. The top layer: nothing below imports it."""

from avadet.engine.checkpoint import (
    latest_checkpoint,
    load_trained_model,
    read_training_checkpoint,
    save_checkpoint,
)

__all__ = [
    "latest_checkpoint",
    "load_trained_model",
    "read_training_checkpoint",
    "save_checkpoint",
]
