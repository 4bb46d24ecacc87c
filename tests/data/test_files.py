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
    assert files.existing("labelmap") is None  # not configured: optional
    # Configured but missing: an error naming the key, never silently skipped (a typo in an
    # exclusions path would train on excluded keyframes).
    with pytest.raises(ConfigError, match=r"data.val_annotations: no such file .*nope.csv.*"
                       r"set data.val_annotations= to go without it"):
        files.existing("val_annotations")
    assert files.existing("train_annotations") == tmp_path / "gt.csv"
    with pytest.raises(ConfigError, match=r"data.val_annotations: no such file .*nope.csv"):
        files.require("val_annotations")
    with pytest.raises(ConfigError, match="data.labelmap is empty"):
        files.require("labelmap")
    with pytest.raises(ConfigError, match="data.source"):
        DatasetFiles.resolve(tmp_path, media="hdf5")


def _annotated(tmp_path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "train.csv").write_text("vid,0902,0.1,0.2,0.5,0.9,1,0\nvid,0903,0.1,0.2,0.5,0.9,1,0\n")
    (ann / "excl.csv").write_text("vid,0903\n")
    return [f"data.root={tmp_path}", "data.train_annotations=annotations/train.csv",
            "data.val_annotations=", "data.train_boxes=", "data.val_boxes="]


@pytest.mark.parametrize("key", ["train_exclusions", "val_exclusions"])
def test_a_typo_in_an_exclusions_path_is_an_error_naming_the_key(tmp_path, key):
    from avadet.engine.build import read_split_tables

    base = _annotated(tmp_path)
    split = key.split("_")[0]
    if split == "val":
        base[2] = "data.val_annotations=annotations/train.csv"
    cfg = load_config(None, [*base, f"data.{key}=annotations/exlc.csv"])
    with pytest.raises(ConfigError, match=rf"data\.{key}: no such file .*exlc\.csv"):
        read_split_tables(cfg, split)
    # Configured and present: read; empty: not configured, no exclusions.
    tables = read_split_tables(load_config(None, [*base, f"data.{key}=annotations/excl.csv"]),
                               split)
    assert tables.exclusions["timestamp"].tolist() == [903]
    assert read_split_tables(load_config(None, [*base, f"data.{key}="]), split).exclusions is None


def test_a_directory_where_an_optional_file_belongs_is_an_error(tmp_path):
    (tmp_path / "ex").mkdir()
    files = DatasetFiles.resolve(tmp_path, train_exclusions="ex")
    with pytest.raises(ConfigError, match="data.train_exclusions: is a directory"):
        files.existing("train_exclusions")
