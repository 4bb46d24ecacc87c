"""Atomically written files get the mode a plain ``open()`` gives, not ``mkstemp``'s 0600."""

import os
import stat

import numpy as np
import pytest

from avadet.io.atomic import atomic_write, current_umask, default_mode


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def plain_open_mode(folder):
    probe = folder / "plain.txt"
    probe.write_text("x")
    return mode(probe)


def test_current_umask_reads_without_changing(umask):
    assert current_umask() == umask
    assert os.umask(umask) == umask  # unchanged by the read


@pytest.mark.parametrize("kind", ["w", "wb"])
def test_atomic_write_gives_the_umask_mode(tmp_path, umask, kind):
    path = tmp_path / "out" / "table.csv"
    with atomic_write(path, kind) as handle:
        handle.write("a,b\n" if kind == "w" else b"\x89PNG")
    assert mode(path) == 0o666 & ~umask == plain_open_mode(tmp_path)


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "shared.csv"
    path.write_text("old")
    os.chmod(path, 0o640)
    with atomic_write(path) as handle:
        handle.write("new")
    assert path.read_text() == "new" and mode(path) == 0o640


def test_default_mode_of_a_new_folder(tmp_path, umask):
    assert default_mode(tmp_path / "new", directory=True) == 0o777 & ~umask


def test_checkpoint_gets_the_umask_mode(tmp_path, umask):
    from torch import nn

    from avadet.config import Config
    from avadet.engine.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "ck" / "checkpoint_iter_0000001.pt", nn.Linear(2, 2),
                           Config(), [1], epoch=0, iteration=1)
    assert mode(path) == 0o666 & ~umask


def test_video_gets_the_umask_mode(tmp_path, umask):
    from avadet.prep.media import open_video_writer

    path = tmp_path / "clip.mp4"
    with open_video_writer(path, width=16, height=16, fps=10) as writer:
        writer.write(np.zeros((2, 16, 16, 3), np.uint8))
    assert mode(path) == 0o666 & ~umask
