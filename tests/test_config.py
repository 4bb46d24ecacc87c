import pytest

from avadet.config import Config, dump_config, load_config, parse_overrides
from avadet.errors import ConfigError


def test_defaults_without_a_file():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.model.alpha == 4 and cfg.data.fps == 30.0


def test_yaml_base_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  alpha: 8\n  depth: 101\ndata:\n  fps: 25\n")
    (tmp_path / "exp.yaml").write_text("_base_: base.yaml\nmodel:\n  depth: 50\n")
    cfg = load_config(tmp_path / "exp.yaml", ["solver.base_lr=0.05", "data.classes=[3,4]"])
    assert cfg.model.alpha == 8  # inherited
    assert cfg.model.depth == 50  # the file overrides its base
    assert cfg.data.fps == 25.0 and isinstance(cfg.data.fps, float)  # ints widen to float
    assert cfg.solver.base_lr == 0.05 and cfg.data.classes == [3, 4]


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  alpah: 8\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model.alpah'; valid keys here: .*alpha"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=r"unknown key 'sovler'"):
        load_config(None, ["sovler.base_lr=1"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.alpha=fast", "model.alpha: expected an integer, got 'fast'"),
        ("model.alpha=2.5", "model.alpha: expected an integer"),
        ("solver.base_lr=abc", "solver.base_lr: expected a number"),
        ("data.train_flip=maybe", "data.train_flip: expected true/false"),
        ("data.classes=3", "data.classes: expected a list"),
        ("data.classes=[a]", r"data.classes\[0\]: expected an integer"),
        ("model=3", "model: expected a mapping"),
        ("model.alpha", "not of the form section.key=value"),
    ],
)
def test_wrong_types_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_string_fields_accept_numeric_looking_values():
    assert load_config(None, ["data.root=2024"]).data.root == "2024"


def test_bad_yaml_and_missing_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_dump_round_trips(tmp_path):
    cfg = load_config(None, ["model.arch=slow", "data.classes=[1,2]"])
    (tmp_path / "d.yaml").write_text(dump_config(cfg))
    assert load_config(tmp_path / "d.yaml") == cfg


def test_parse_overrides_nests():
    assert parse_overrides(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}


def test_exponent_numbers_without_a_dot_are_numbers():
    # YAML 1.1 reads 1e-3 as a string; a float setting takes it as the number it looks like.
    cfg = load_config(None, ["solver.base_lr=1e-3", "solver.weight_decay=5E-4"])
    assert cfg.solver.base_lr == 1e-3 and cfg.solver.weight_decay == 5e-4
    with pytest.raises(ConfigError, match="solver.base_lr: expected a number"):
        load_config(None, ["solver.base_lr=nan"])
