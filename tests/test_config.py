import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avadet.config import Config, config_to_dict, dump_config, load_config, parse_overrides
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


# ---------------------------------------------------------------------------------------------
# Hostile and clumsy configs: each is one ConfigError line naming the key or the file.

from avadet.config import FREE, RULES, config_from_dict, with_overrides  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _one_line(exc: ConfigError) -> str:
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message, message
    return message


BAD_OVERRIDES = [
    ("data.sampling_rate=0", "data.sampling_rate"),
    ("data.sampling_rate=-2", "data.sampling_rate"),
    ("data.num_frames=0", "data.num_frames"),
    ("data.fps=0", "data.fps"),
    ("data.fps=-30", "data.fps"),
    ("data.fps=.inf", "data.fps"),
    ("data.fps=.nan", "data.fps"),
    ("solver.clip_grad_norm=.nan", "solver.clip_grad_norm"),
    ("solver.clip_grad_norm=-1", "solver.clip_grad_norm"),
    ("solver.base_lr=.inf", "solver.base_lr"),
    ("solver.base_lr=-0.1", "solver.base_lr"),
    ("solver.momentum=1.5", "solver.momentum"),
    ("solver.batch_size=0", "solver.batch_size"),
    ("solver.max_epoch=0", "solver.max_epoch"),
    ("solver.steps=[0,.nan]", "solver.steps"),
    ("train.keep_checkpoints=-3", "train.keep_checkpoints"),
    ("train.checkpoint_every_iters=0", "train.checkpoint_every_iters"),
    ("train.log_every_iters=-1", "train.log_every_iters"),
    ("train.seed=-1", "train.seed"),
    ("train.seed=99999999999999999999", "train.seed"),
    ("train.eval_every_epochs=-1", "train.eval_every_epochs"),
    ("train.device=tpu", "train.device"),
    ("test.batch_size=0", "test.batch_size"),
    ("data.train_detection_score=.nan", "data.train_detection_score"),
    ("data.test_detection_score=-.inf", "data.test_detection_score"),
    ("data.train_jitter_scales=[256]", "data.train_jitter_scales"),
    ("data.train_jitter_scales=[320,256]", "data.train_jitter_scales"),
    ("data.train_jitter_scales=[0,256]", "data.train_jitter_scales"),
    ("data.mean=[0.45,0.45]", "data.mean"),
    ("data.std=[0.2,0,0.2]", "data.std"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.source=webcam", "data.source"),
    ("data.segment_end=800", "data.segment_end"),
    ("data.train_crop_size=0", "data.train_crop_size"),
    ("model.depth=34", "model.depth"),
    ("model.alpha=0", "model.alpha"),
    ("model.num_classes=0", "model.num_classes"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.slow_temporal_kernels=[1,1,3]", "model.slow_temporal_kernels"),
    ("model.fast_temporal_kernels=[3,3,[0],3]", "model.fast_temporal_kernels"),
    ("model.nonlocal_blocks=[[],[]]", "model.nonlocal_blocks"),
    ("model.nonlocal_pool=[2,2]", "model.nonlocal_pool"),
    ("model.arch=resnet", "model.arch"),
    ("model.head_activation=relu", "model.head_activation"),
    ("model.roi_spatial_scale=0", "model.roi_spatial_scale"),
    ("solver.optimizer=lamb", "solver.optimizer"),
    ("data.root=[1,2]", "data.root"),
    ("data.train_exclusions={a: 1}", "data.train_exclusions"),
    ("data.classes=[99999999999]", "data.classes"),
    ("a.b.c.d.e=1", "unknown key 'a'"),
    ("data." + "x." * 3000 + "y=1", "data"),
    ("data.classes=" + "[" * 5000 + "]" * 5000, "data.classes"),  # YAML recursion: kept as text
]


@pytest.mark.parametrize("override, key", BAD_OVERRIDES, ids=[o[0][:40] for o in BAD_OVERRIDES])
def test_bad_overrides_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert key in _one_line(info.value)


@pytest.mark.parametrize("override, key", BAD_OVERRIDES[:10])
def test_with_overrides_validates_too(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        with_overrides(load_config(), [override])


def test_every_setting_has_a_rule_or_is_free_text():
    cfg = load_config()
    keys = {f"{section}.{f.name}" for section in ("data", "model", "solver", "train", "test")
            for f in dataclasses.fields(getattr(cfg, section))}
    assert keys == set(RULES) | FREE and not set(RULES) & FREE


def test_shipped_configs_and_defaults_are_valid():
    for path in sorted(CONFIGS.glob("**/*.yaml")):
        load_config(path)
    assert config_from_dict(config_to_dict(load_config())) == load_config()


def _write(tmp_path, data: bytes, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_FILES = [
    ("base_number", b"_base_: 5\n", "_base_ must be a file name"),
    ("base_list", b"_base_: [a.yaml, b.yaml]\n", "_base_ must be a file name"),
    ("section_list", b"data: [1, 2]\n", "data: expected a mapping"),
    ("root_list", b"data:\n  root: [1, 2]\n", "data.root: expected a string"),
    ("root_mapping", b"data:\n  train_exclusions: {a: 1}\n", "data.train_exclusions"),
    ("deep_lists", b"data:\n  root: " + b"[" * 20000 + b"]" * 20000 + b"\n", "nested too deeply"),
    ("deep_maps", b"data:\n  root: " + b"{a: " * 20000 + b"1" + b"}" * 20000 + b"\n",
     "nested too deeply"),
    ("bad_utf8", b"data:\n  root: \xff\xfe\n", ":2: not UTF-8"),
    ("multiline_yaml_error", b"model: [unclosed\n", "invalid YAML"),
    ("tab_indent", b"model:\n\talpha: 4\n", "invalid YAML"),
    ("list_top", b"- 1\n- 2\n", "must be a mapping"),
    ("fps_zero", b"data:\n  fps: 0\n", "data.fps"),
    ("nan_clip", b"solver:\n  clip_grad_norm: .nan\n", "solver.clip_grad_norm"),
    ("keep_negative", b"train:\n  keep_checkpoints: -3\n", "train.keep_checkpoints"),
]


@pytest.mark.parametrize("name, data, says", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_config_files_are_one_line(tmp_path, name, data, says):
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, data))
    assert says in _one_line(info.value)


def test_devices_directories_and_huge_files_are_refused(tmp_path):
    for path, says in [("/dev/zero", "not a regular file"), (tmp_path, "is a directory")]:
        with pytest.raises(ConfigError, match=says):
            load_config(path)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as handle:
        handle.truncate(11 * 2**20)
    with pytest.raises(ConfigError, match="larger than 10 MB"):
        load_config(huge)
    with pytest.raises(ConfigError, match="config path must be a file name"):
        load_config(5)  # type: ignore[arg-type]


SETTING = st.sampled_from(sorted(RULES))
VALUE = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                  st.text(max_size=8), st.lists(st.integers(-3, 400), max_size=5),
                  st.booleans(), st.none())


@settings(max_examples=300, deadline=None)
@given(key=SETTING, value=VALUE)
def test_random_values_load_or_fail_with_the_key(key, value):
    """Any value for any setting: a config whose value passes the rule, or a ConfigError."""
    section, name = key.split(".")
    try:
        cfg = config_from_dict({section: {name: value}})
    except ConfigError as exc:
        assert key in _one_line(exc) or "data.segment" in str(exc)
    else:
        loaded = getattr(getattr(cfg, section), name)
        assert RULES[key][1](loaded)


@pytest.mark.parametrize("config, override, says", [
    ("/dev/zero", None, "not a regular file"),
    (None, "data.sampling_rate=0", "data.sampling_rate"),
    (None, "solver.clip_grad_norm=.nan", "solver.clip_grad_norm"),
    ("bad_utf8", None, "not UTF-8"),
])
def test_commands_print_config_errors_as_one_line(tmp_path, capsys, config, override, says):
    from avadet.cli import main

    if config == "bad_utf8":
        config = str(_write(tmp_path, b"data:\n  root: \xff\n"))
    elif config is None:
        config = str(_write(tmp_path, b"data:\n  root: x\n"))
    argv = ["check-data", "--config", config] + ([override] if override else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err
