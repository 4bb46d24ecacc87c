"""One description of a dataset's files: every path resolved once, checked where it is needed.

A config names the files relative to a dataset root (``data.root``, ``data.labelmap``, ...);
:class:`DatasetFiles` holds them resolved, and is what the dataset, the data doctor, the
evaluation set-up and person detection are handed. Each field is named after its config key,
so an error can name the key a user has to fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from avadet.data.sources import FrameFolderSource, VideoSource
from avadet.errors import ConfigError

PathLike = Union[str, Path]
MEDIA_KINDS = ("frames", "video")
ClipSource = Union[FrameFolderSource, VideoSource]


def resolve_path(root: PathLike, path: PathLike) -> Optional[Path]:
    """``path`` relative to the dataset ``root`` (absolute paths unchanged); None when empty."""
    if not path:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() or not root else Path(root).expanduser() / p


@dataclass(frozen=True)
class DatasetFiles:
    """The files of one dataset (None: not configured).

    ``media`` is ``"frames"`` (JPEG folders ``frames_dir/<video_id>/`` named by
    ``frame_template``, 1-based) or ``"video"`` (``videos_dir/<video_id>.<ext>``, cut to the
    segment).
    """

    root: Optional[Path] = None
    labelmap: Optional[Path] = None
    train_annotations: Optional[Path] = None
    val_annotations: Optional[Path] = None
    train_exclusions: Optional[Path] = None
    val_exclusions: Optional[Path] = None
    train_boxes: Optional[Path] = None
    val_boxes: Optional[Path] = None
    media: str = "frames"
    frames_dir: Path = Path(".")
    videos_dir: Path = Path(".")
    frame_template: str = "{video_id}_{index:06d}.jpg"

    @classmethod
    def resolve(cls, root: PathLike = "", *, media: str = "frames",
                frame_template: str = "{video_id}_{index:06d}.jpg",
                **paths: PathLike) -> DatasetFiles:
        """Every path of ``paths`` (the field names above) resolved against ``root``."""
        if media not in MEDIA_KINDS:
            raise ConfigError(f"data.source must be 'frames' or 'video', got {media!r}")
        known = {f.name for f in dataclasses.fields(cls)} - {"root", "media", "frame_template"}
        unknown = sorted(set(paths) - known)
        if unknown:
            raise TypeError(f"unknown dataset file(s) {unknown}; known: {sorted(known)}")
        resolved = {name: resolve_path(root, value) for name, value in paths.items()}
        for folder in ("frames_dir", "videos_dir"):
            resolved[folder] = resolved.get(folder) or Path(".")
        return cls(root=Path(root).expanduser() if root else None, media=media,
                   frame_template=frame_template, **resolved)

    def existing(self, name: str, hint: str = "") -> Optional[Path]:
        """The path of the optional file ``name``: None when it is not configured (empty).

        A configured file that does not exist is a ConfigError naming its key: skipping it
        silently would, for a typo in an exclusions path, train on excluded keyframes.
        """
        path = getattr(self, name)
        if path is None:
            return None
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(f"data.{name}: {what} {path} (set data.{name}= to go "
                              f"without it){hint}")
        return path

    def require(self, name: str, hint: str = "") -> Path:
        """The path of field ``name``, which must be configured and exist."""
        path = getattr(self, name)
        if path is None:
            raise ConfigError(f"data.{name} is empty{hint}")
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(f"data.{name}: {what} {path}{hint}")
        return path

    def source(self) -> ClipSource:
        """The clip source of ``media``."""
        if self.media == "video":
            return VideoSource(self.videos_dir)
        return FrameFolderSource(self.frames_dir, self.frame_template)

    @property
    def media_dir(self) -> Path:
        return self.videos_dir if self.media == "video" else self.frames_dir
