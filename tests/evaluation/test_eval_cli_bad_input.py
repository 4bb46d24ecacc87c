"""``avadet eval`` on hostile and clumsy inputs, through ``avadet.cli.main``: exit status 2,
one stderr line naming the file (and the line, for tables), no traceback, no --json written."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avadet.cli import main as avadet_main

CASE = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "case_d"
SLOTS = {"gt": "gt.csv", "pred": "pred.csv", "labelmap": "labelmap.pbtxt",
         "exclusions": "exclusions.csv"}


def _case(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for slot, name in SLOTS.items():
        paths[slot] = tmp_path / name
        shutil.copy(CASE / name, paths[slot])
    return paths


def _run(paths: dict[str, Path], out: Path) -> int:
    return avadet_main(["eval", str(paths["gt"]), str(paths["pred"]), "--labelmap",
                        str(paths["labelmap"]), "--exclusions", str(paths["exclusions"]),
                        "--json", str(out)])


def _assert_one_line_error(capsys, code: int, out: Path, path: Path, line) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code in (1, 2), (code, captured)
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert len(err.splitlines()) == 1, err
    where = f"{path}:{line}:" if line is not None else str(path)
    assert where in err, (err, where)
    assert not out.exists()
    return err


def _text(text: str):
    return lambda path: path.write_text(text)


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _gzipped(path: Path) -> None:
    path.write_bytes(gzip.compress(path.read_bytes()))


def _missing(path: Path) -> None:
    path.unlink()


def _append(text: str):
    return lambda path: path.write_text(path.read_text() + text)


def _append_bytes(data: bytes):
    return lambda path: path.write_bytes(path.read_bytes() + data)


ROW = "vidD,0903,0.1,0.2,0.5,0.9,1"
# (slot, name, damage, line of the error or None, a word the message says)
CORPUS = [
    *[(slot, "directory", _directory, None, "directory") for slot in SLOTS],
    *[(slot, "gzip", _gzipped, None, "gzip") for slot in SLOTS],
    *[(slot, "missing", _missing, None, "not found") for slot in SLOTS],
    ("gt", "bad_utf8", _append_bytes(b"vid\xff,0903,0.1,0.2,0.5,0.9,1,0\n"), 9, "UTF-8"),
    ("pred", "bad_utf8", _append_bytes(b"vid\xff,0903,0.1,0.2,0.5,0.9,1,0.5\n"), 10, "UTF-8"),
    ("exclusions", "bad_utf8", _append_bytes(b"vid\xff,0903\n"), 2, "UTF-8"),
    ("labelmap", "bad_utf8", _append_bytes(b"# \xff\n"), 13, "UTF-8"),
    ("gt", "timestamp_1e30", _append("vidD,1e30,0.1,0.2,0.5,0.9,1,0\n"), 9, "out of range"),
    ("gt", "timestamp_huge", _append("vidD,99999999999999999999,0.1,0.2,0.5,0.9,1,0\n"), 9,
     "out of range"),
    ("gt", "action_huge", _append(ROW + "9999999999999999999999,0\n"), 9, "out of range"),
    ("pred", "timestamp_1e30", _append("vidD,1e30,0.1,0.2,0.5,0.9,1,0.5\n"), 10, "out of range"),
    ("pred", "action_huge", _append(ROW + "9999999999999999999999,0.5\n"), 10, "out of range"),
    ("pred", "score_inf", _append(ROW + ",inf\n"), 10, "infinite"),
    ("pred", "score_minus_inf", _append(ROW + ",-inf\n"), 10, "infinite"),
    ("pred", "nine_columns", _append(ROW + ",0.5,7\n"), 10, "columns"),
    ("exclusions", "three_columns", _text("vidD,0906,x\n"), 1, "found 3"),
    ("exclusions", "timestamp_1e30", _text("vidD,1e30\n"), 1, "not an integer"),
    ("exclusions", "header", _text("video_id,timestamp\nvidD,0906\n"), 1, "header"),
    ("labelmap", "fractional_id", _text('item {\n  name: "a"\n  id: 5.5\n}\n'), 3, "integer"),
    ("labelmap", "two_ids", _text('item {\n  name: "a"\n  id: 1\n  id: 2\n}\n'), 4, "2 ids"),
    ("labelmap", "huge_id", _text('item {\n  name: "a"\n  id: 99999999999999999999\n}\n'), 3,
     "2**31"),
    ("labelmap", "empty", _text(""), None, "no 'item"),
    ("gt", "empty_lines_then_text", _text("\n\nvidD,0902,a,0,1,1,1\n"), 3, "not a number"),
]


@pytest.mark.parametrize("slot, name, damage, line, says", CORPUS,
                         ids=[f"{c[0]}-{c[1]}" for c in CORPUS])
def test_eval_bad_input_is_one_line(tmp_path, capsys, slot, name, damage, line, says) -> None:
    paths = _case(tmp_path)
    damage(paths[slot])
    out = tmp_path / "out" / "result.json"
    err = _assert_one_line_error(capsys, _run(paths, out), out, paths[slot], line)
    assert says in err


def test_device_as_gt(tmp_path, capsys) -> None:
    paths = _case(tmp_path)
    paths["gt"] = Path("/dev/zero")
    out = tmp_path / "result.json"
    err = _assert_one_line_error(capsys, _run(paths, out), out, paths["gt"], None)
    assert "regular file" in err


def test_swapped_gt_and_predictions_say_so(tmp_path, capsys) -> None:
    """``avadet eval PRED GT``: the gt file's 8th column holds scores in (0, 1)."""
    paths = _case(tmp_path)
    paths["gt"], paths["pred"] = paths["pred"], paths["gt"]
    out = tmp_path / "result.json"
    err = _assert_one_line_error(capsys, _run(paths, out), out, paths["gt"], 1)
    assert "looks like a prediction file" in err and "swapped" in err


def test_the_intact_case_still_evaluates(tmp_path, capsys) -> None:
    paths = _case(tmp_path)
    out = tmp_path / "result.json"
    assert _run(paths, out) == 0
    assert out.exists() and capsys.readouterr().err == ""


FIELD = st.sampled_from(["vidD", "0902", "1e30", "inf", "-1", "0.5", "0.25", "", "x", "1",
                         "99999999999999999999", "nan", "0.75", "3"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.sampled_from(["gt", "pred", "exclusions"]),
       rows=st.lists(st.lists(FIELD, min_size=1, max_size=9), min_size=1, max_size=4))
def test_random_rows_in_any_table(tmp_path, capsys, slot, rows) -> None:
    """Random rows appended to one table: a result, or exit 2 with one line naming it."""
    paths = _case(tmp_path)
    with open(paths[slot], "a") as handle:
        handle.write("".join(",".join(row) + "\n" for row in rows))
    out = tmp_path / "r.json"
    if out.exists():
        out.unlink()
    code = _run(paths, out)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 0:
        assert out.exists()
    else:
        assert code == 2 and not out.exists()
        err = captured.err.strip()
        assert len(err.splitlines()) == 1 and re.search(re.escape(str(paths[slot])) + r":\d+:", err), err
