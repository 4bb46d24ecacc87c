"""``avadet models``: the zoo as a table, one entry in full, JSON; the cache marker follows
TORCH_HOME; an unknown name is exit 2 and one line."""

from __future__ import annotations

import json
import re

import pytest

from avadet.cli import main
from avadet.models import zoo


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def table_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()
            and not line.startswith("cache:")}


def test_the_table_lists_every_entry_with_its_numbers(hub, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["name", "source", "arch", "AVA", "val", "mAP",
                                           "short", "side", "cached"]
    rows = table_rows(out)
    assert list(rows) == zoo.zoo_names()
    for entry in zoo.ZOO:
        name, source, arch, version, val_map, short_side, cached = rows[entry.name]
        assert (source, arch, version) == (entry.source, entry.arch_label, f"v{entry.ava_version}")
        assert float(val_map) == entry.val_map
        assert int(short_side) == entry.preprocessing.test_short_side
        assert cached == "-"


def test_a_file_in_the_hub_cache_is_marked_cached(hub, capsys):
    entry = zoo.find_entry("pytorchvideo_slowfast_r50_detection")
    hub.mkdir(parents=True)
    (hub / entry.file_name).write_bytes(b"weights")
    assert main(["models"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[entry.name][-1] == "yes"
    assert [n for n, row in rows.items() if row[-1] == "yes"] == [entry.name]


def test_one_entry_in_full_with_the_test_command(hub, capsys):
    entry = zoo.find_entry("mmaction2_slowfast_r50_8x8_ava22")
    assert main(["models", entry.name, "--data-root", "/mnt/ava"]) == 0
    out = capsys.readouterr().out
    assert entry.url in out
    assert re.search(r"sha256: +d934a48f ", out)
    assert "25.90 on AVA v2.2 val" in out
    assert "boxes scaled per-axis" in out
    assert (f"avadet test --config configs/ava/slowfast_32x2_r50_short.yaml --checkpoint "
            f"{entry.name} data.root=/mnt/ava") in out


def test_not_published_checksums_say_so(hub, capsys):
    assert main(["models", "pyslowfast_slow_8x8_r50"]) == 0
    assert re.search(r"sha256: +not published\n", capsys.readouterr().out)


def test_json_holds_the_whole_entries(hub, capsys):
    assert main(["models", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == zoo.zoo_names()
    first = entries[0]
    assert first["preprocessing"]["box_scaling"] == "long_side"
    assert first["cached"] is False and first["url"] == zoo.ZOO[0].url


def test_an_unknown_name_is_exit_2_and_one_line(hub, capsys):
    assert main(["models", "slowfast_32x2_r101"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and captured.out == ""
    assert lines[0].startswith("avadet models: error: slowfast_32x2_r101: no model")
    assert "pyslowfast_slowfast_32x2_r101_50_50" in lines[0]


def test_the_readme_shows_the_current_table(hub, capsys):
    """README's "Published models" block is the output of `avadet models` (no file cached)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("$ avadet models\n", 1)[1].split("```", 1)[0]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line and not line.startswith("cache:")]
    assert [line for line in block.splitlines() if line and not line.startswith("cache:")] == table


def test_docs_give_every_models_reproduce_command():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "model_zoo.md").read_text()
    for entry in zoo.ZOO:
        assert f"### `{entry.name}`" in doc
        assert zoo.reproduce_command(entry) in doc
