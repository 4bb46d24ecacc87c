"""Reading detectron2 / Detectron weight pickles (``.pkl``) without running code from them:
through the project's one restricted unpickler (:mod:`avadet.io.safe_pickle`), which builds
only numeric arrays in plain containers and checks every array's bytes against its shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from avadet.errors import AvadetError
from avadet.io.safe_pickle import restricted_unpickle


class UnsafePickleError(AvadetError):
    """The pickle asks for something other than arrays and plain containers."""


def load_weights_pickle(path: Union[str, Path]) -> Any:
    """The object a weights ``.pkl`` holds (dicts of numpy arrays), refusing anything else
    with one line naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AvadetError(f"{path}: cannot read weights: {exc.strerror or exc}") from None
    return restricted_unpickle(data, str(path), UnsafePickleError)
