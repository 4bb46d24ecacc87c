"""A corpus of hostile and clumsy inputs for every reader: each is one FormatError naming the
file (and the line, for tables), never a pandas or numpy traceback, and never wrong data."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avadet.errors import FormatError
from avadet.io import (
    read_annotations,
    read_exclusions,
    read_frame_list,
    read_labelmap,
    read_person_boxes,
    read_predictions,
)

GOOD_GT = "vid,0902,0.1,0.2,0.5,0.9,12,0\n"
GOOD_PRED = "vid,0902,0.1,0.2,0.5,0.9,12,0.75\n"
GOOD_BOXES = "vid,0902,0.1,0.2,0.5,0.9,-1,0.9\n"
GOOD_EXCL = "vid,0902\n"
GOOD_FRAMES = "original_vido_id video_id frame_id path labels\nvid 0 0 vid/vid_000001.jpg \"\"\n"

TABLE_READERS = {
    "gt": (read_annotations, GOOD_GT),
    "pred": (read_predictions, GOOD_PRED),
    "boxes": (read_person_boxes, GOOD_BOXES),
    "exclusions": (read_exclusions, GOOD_EXCL),
    "frames": (read_frame_list, GOOD_FRAMES),
}


def _one_line(exc: FormatError, path: Path, line: int | None) -> None:
    message = str(exc)
    assert "\n" not in message, message
    where = f"{path}:{line}:" if line is not None else f"{path}"
    assert message.startswith(where), (message, where)
    assert "Traceback" not in message


# Every reader, whatever it reads: not a file, not text, not uncompressed.
def _directory(tmp_path: Path, good: str) -> Path:
    path = tmp_path / "a_dir.csv"
    path.mkdir()
    return path


def _gzip(tmp_path: Path, good: str) -> Path:
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(good.encode() * 3))
    return path


def _gzip_named_csv(tmp_path: Path, good: str) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(gzip.compress(good.encode()))
    return path


def _bad_utf8(tmp_path: Path, good: str) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(good.encode() + b"vid\xff\xfe,0903,0.1,0.2,0.5,0.9,12,0\n")
    return path


def _missing(tmp_path: Path, good: str) -> Path:
    return tmp_path / "no_such_file.csv"


def _device(tmp_path: Path, good: str) -> Path:
    return Path("/dev/zero")


UNREADABLE = {
    "directory": (_directory, None),
    "gzip": (_gzip, None),
    "gzip_named_csv": (_gzip_named_csv, None),
    "bad_utf8": (_bad_utf8, "line"),
    "missing": (_missing, None),
    "device": (_device, None),
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
@pytest.mark.parametrize("reader", list(TABLE_READERS) + ["labelmap"])
def test_unreadable_inputs_are_one_line(tmp_path: Path, reader: str, kind: str) -> None:
    make, has_line = UNREADABLE[kind]
    if reader == "labelmap":
        read, good = read_labelmap, 'item {\n  name: "a"\n  id: 1\n}\n'
    else:
        read, good = TABLE_READERS[reader]
    path = make(tmp_path, good)
    with pytest.raises(FormatError) as info:
        read(path)
    line = None
    if has_line:
        line = len(good.splitlines()) + 1
    _one_line(info.value, path, line)


# Table contents: (reader, text, line, what the message says).
CONTENT_CASES = [
    ("frames", "", None, "empty file"),
    ("frames", "original_vido_id video_id frame_id path labels\nvid 0 1e30 p \"\"\n", 2,
     "frame_index"),
    ("frames", "original_vido_id video_id frame_id path labels\nvid 0 1.5 p \"\"\n", 2,
     "frame_index"),
    ("frames", "original_vido_id video_id frame_id path labels\nvid 99999999999999999999 0 p "
     "\"\"\n", 2, "video_index"),
    ("frames", "original_vido_id video_id frame_id path labels\nvid 0 1\n", 2, "columns"),
    ("frames", "a b c\n", 1, "found 3"),
    ("gt", GOOD_GT + "vid,99999999999999999999999,0.1,0.2,0.5,0.9,12,0\n", 2, "out of range"),
    ("gt", GOOD_GT + "vid,1e30,0.1,0.2,0.5,0.9,12,0\n", 2, "out of range"),
    ("gt", GOOD_GT + "vid,0903,0.1,0.2,0.5,0.9,99999999999999999999999,0\n", 2, "out of range"),
    ("gt", GOOD_GT + "vid,0903,0.1,0.2,0.5,0.9,12,1e30\n", 2, "out of range"),
    ("gt", GOOD_GT + "vid,inf,0.1,0.2,0.5,0.9,12,0\n", 2, "out of range"),
    ("gt", GOOD_GT + "vid,nan,0.1,0.2,0.5,0.9,12,0\n", 2, "timestamp"),
    ("gt", GOOD_PRED + GOOD_PRED, 1, "looks like a prediction file"),
    ("pred", GOOD_PRED + "vid,0902,0.1,0.2,0.5,0.9,12,inf\n", 2, "score is infinite"),
    ("pred", GOOD_PRED + "vid,0902,0.1,0.2,0.5,0.9,12,-inf\n", 2, "score is infinite"),
    ("pred", GOOD_PRED + "vid,1e30,0.1,0.2,0.5,0.9,12,0.5\n", 2, "out of range"),
    ("pred", GOOD_PRED + "vid,0902,0.1,0.2,0.5,0.9,1e19,0.5\n", 2, "out of range"),
    ("pred", GOOD_PRED + "vid,0902,0.1,0.2,0.5,0.9,12,0.5,1\n", 2, "columns"),
    ("boxes", GOOD_BOXES + "vid,0902,0.1,0.2,0.5,0.9,-1,nan\n", 2, "not a number"),
    ("pred", GOOD_PRED + "vid,0902,0.1,0.2,0.5,0.9,12,nan\n", 2, "not a number"),
    ("boxes", GOOD_BOXES + "vid,0902,0.1,0.2,0.5,0.9,-1,inf\n", 2, "finite"),
    ("exclusions", GOOD_EXCL + "vid,0903,extra\n", 2, "found 3"),
    ("exclusions", "vid,0903,extra\nvid,0904,x\n", 1, "found 3"),
    ("exclusions", "vid,0903,x,y,z\n", 1, "columns"),
    ("exclusions", GOOD_EXCL + "vid,1e30\n", 2, "not an integer"),
    ("exclusions", GOOD_EXCL + "vid,99999999999999999999999\n", 2, "not an integer"),
    ("exclusions", GOOD_EXCL + "vid,902.5\n", 2, "not an integer"),
    ("exclusions", GOOD_EXCL + "vid\n", 2, "empty"),
    ("exclusions", "video_id,timestamp\n" + GOOD_EXCL, 1, "no header"),
]


@pytest.mark.parametrize("reader, text, line, says", CONTENT_CASES)
def test_bad_contents_name_file_and_line(tmp_path, reader, text, line, says) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=re.escape(says)) as info:
        TABLE_READERS[reader][0](path)
    _one_line(info.value, path, line)


def test_exclusions_with_three_columns_lose_nothing_silently(tmp_path) -> None:
    """pandas made the first of 3 columns the index: video ids became timestamps."""
    path = tmp_path / "ex.csv"
    path.write_text("vid,0902,x\nvid,0903,x\n")
    with pytest.raises(FormatError, match=r"ex\.csv:1: expected 2 columns"):
        read_exclusions(path)


LABELMAP_CASES = [
    ('item {\n  name: "a"\n  id: 5.5\n}\n', 3, "id must be an integer"),
    ('item {\n  name: "a"\n  id: 1\n  id: 2\n}\n', 4, "2 ids"),
    ('item {\n  name: "a"\n  id: 99999999999999999999999\n}\n', 3, "below 2**31"),
    ('item {\n  name: "a"\n  id: x\n}\n', 3, "id must be an integer"),
    ('item {\n  name: "a"\n  id:\n}\n', 3, "id must be an integer"),
    ('item {\n  name: "a"\n}\n', 1, "without an id"),
]


@pytest.mark.parametrize("text, line, says", LABELMAP_CASES)
def test_bad_labelmaps_name_file_and_line(tmp_path, text, line, says) -> None:
    path = tmp_path / "l.pbtxt"
    path.write_text(text)
    with pytest.raises(FormatError, match=re.escape(says)) as info:
        read_labelmap(path)
    _one_line(info.value, path, line)


def test_huge_labelmap_is_refused_without_reading_it_all(tmp_path) -> None:
    path = tmp_path / "l.pbtxt"
    with open(path, "wb") as handle:
        handle.truncate(11 * 2**20)
    with pytest.raises(FormatError, match="larger than 10 MB"):
        read_labelmap(path)


LINE = st.text(st.sampled_from("vid,0123456789.-e+naif \t\"x\xe9"), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, max_size=6), reader=st.sampled_from(list(TABLE_READERS)),
       junk=st.binary(max_size=8))
def test_random_text_gives_a_table_or_one_formaterror(tmp_path, lines, reader, junk) -> None:
    """Whatever the bytes: a table, or one FormatError line naming the file."""
    path = tmp_path / "fuzz.csv"
    path.write_bytes("\n".join(lines).encode() + junk)
    try:
        TABLE_READERS[reader][0](path)
    except FormatError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(st.sampled_from('item{}namid:"5.-x \n#label_'), max_size=60))
def test_random_labelmaps_give_a_labelmap_or_one_formaterror(tmp_path, body) -> None:
    path = tmp_path / "fuzz.pbtxt"
    path.write_text(body)
    try:
        labelmap = read_labelmap(path)
    except FormatError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
    else:
        assert all(isinstance(i, int) and abs(i) < 2**31 for i in labelmap.ids)


def test_a_pipe_is_refused_rather_than_read_twice(tmp_path) -> None:
    """``avadet eval <(zcat gt.csv.gz) ...``: the readers re-read a file to name the line of
    an error, which would block on a pipe; refused up front, without opening it."""
    import os

    fifo = tmp_path / "gt.fifo"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="is a pipe; write it to a file first"):
        read_annotations(fifo)
