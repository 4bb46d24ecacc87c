"""Every command fed the wrong thing where a file belongs: a path that does not exist, a
folder, binary garbage, invalid UTF-8. Each must end with exit status 1 or 2 and one stderr
line naming the path, no traceback, and nothing written at its output path."""

from __future__ import annotations

from pathlib import Path

import pytest

from avadet.cli import main

BAD_KINDS = ("missing", "folder", "garbage", "latin1")


def bad_path(tmp_path: Path, kind: str, suffix: str) -> Path:
    path = tmp_path / f"bad_{kind}{suffix}"
    if kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "latin1":
        path.write_bytes("data:\n  root: caf\xe9\nvid\xe9o,0902,0.1\n".encode("latin-1"))
    return path


def argv_for(command: str, bad: Path, out: Path) -> list[str]:
    """The command line of ``command`` with ``bad`` where its main input file goes."""
    return {
        "make-synthetic": ["make-synthetic", str(bad), "--set", "write_videos=false"],
        "cut-videos": ["cut-videos", str(bad), str(out), "--no-progress"],
        "extract-frames": ["extract-frames", str(bad), str(out), "--no-progress"],
        "make-frame-lists": ["make-frame-lists", str(bad), str(out), "--annotations-dir", str(bad)],
        "convert-annotations": ["convert-annotations", str(bad), "--out", str(out / "a.csv"),
                                "--labelmap", str(out / "l.pbtxt"), "--normalized"],
        "check-data": ["check-data", "--config", str(bad), "--quiet"],
        "detect-persons": ["detect-persons", "--config", str(bad), "--out", str(out / "b.csv"),
                           "--persons", "csv", "--boxes", str(bad)],
        "train": ["train", "--config", str(bad), f"train.output_dir={out}"],
        "test": ["test", "--config", str(bad), "--checkpoint", str(bad),
                 "--output-csv", str(out / "p.csv")],
        "eval": ["eval", str(bad), str(bad), "--labelmap", str(bad),
                 "--json", str(out / "e.json")],
        "detect": ["detect", str(bad), "--checkpoint", str(bad), "--out", str(out),
                   "--persons", "csv", "--boxes", str(bad), "--no-progress"],
    }[command]


COMMANDS_WITH_FILES = ["make-synthetic", "cut-videos", "extract-frames", "make-frame-lists",
                       "convert-annotations", "check-data", "detect-persons", "train", "test",
                       "eval", "detect"]


# A missing or empty folder is where make-synthetic writes a new dataset: not a bad input.
CASES = [(command, kind) for command in COMMANDS_WITH_FILES for kind in BAD_KINDS
         if not (command == "make-synthetic" and kind in ("missing", "folder"))]


@pytest.mark.parametrize("command, kind", CASES)
def test_a_bad_input_file_is_one_line_and_writes_nothing(command, kind, tmp_path, capsys):
    bad = bad_path(tmp_path, kind, ".yaml" if command in ("check-data", "train", "test",
                                                          "detect-persons") else ".csv")
    out = tmp_path / "out"
    try:
        code = main(argv_for(command, bad, out))
    except SystemExit as exc:  # usage errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert code in (1, 2), (command, kind, code, err)
    assert "Traceback" not in err
    assert len(lines) == 1, (command, kind, err)
    assert bad.name in lines[0] or str(bad) in lines[0], (command, kind, lines[0])
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert written == [], (command, kind, written)
