"""DatasetFiles: a dataset's files resolved once from the config, checked where needed."""

from __future__ import annotations

import pytest

from avadet.config import load_config
from avadet.data import DatasetFiles, FrameFolderSource, VideoSource, resolve_path
from avadet.engine import dataset_files
from avadet.errors import ConfigError


def test_resolve_path():
    assert resolve_path("/data/ava", "annotations/x.csv").as_posix() == "/data/ava/annotations/x.csv"
    assert resolve_path("/data/ava", "/abs/x.csv").as_posix() == "/abs/x.csv"
    assert resolve_path("/data/ava", "") is None


def test_every_file_of_the_config_resolves_against_the_root(tmp_path):
    cfg = load_config(None, [f"data.root={tmp_path}", "data.val_boxes=", "data.source=video",
                             "data.train_exclusions=/elsewhere/excl.csv"])
    files = dataset_files(cfg.data)
    assert files.root == tmp_path
    assert files.train_annotations == tmp_path / cfg.data.train_annotations
    assert files.train_exclusions.as_posix() == "/elsewhere/excl.csv"
    assert files.val_boxes is None  # not configured
    assert files.media_dir == tmp_path / "videos" and isinstance(files.source(), VideoSource)
    frames = dataset_files(load_config(None, [f"data.root={tmp_path}"]).data)
    assert isinstance(frames.source(), FrameFolderSource) and frames.media_dir == tmp_path / "frames"


def test_required_and_optional_files_name_their_config_key(tmp_path):
    (tmp_path / "gt.csv").write_text("")
    files = DatasetFiles.resolve(tmp_path, train_annotations="gt.csv", val_annotations="nope.csv")
    assert files.require("train_annotations") == tmp_path / "gt.csv"
    assert files.existing("val_annotations") is None and files.existing("labelmap") is None
    with pytest.raises(ConfigError, match=r"data.val_annotations: no such file .*nope.csv"):
        files.require("val_annotations")
    with pytest.raises(ConfigError, match="data.labelmap is empty"):
        files.require("labelmap")
    assert files.for_split("train", "annotations") == tmp_path / "gt.csv"
    with pytest.raises(ConfigError, match="split"):
        files.for_split("test", "annotations")
    with pytest.raises(ConfigError, match="data.source"):
        DatasetFiles.resolve(tmp_path, media="hdf5")
