"""The model zoo table and resolve_checkpoint: a name becomes a verified file in the torch hub
cache, downloaded once; every failure is one line. Nothing touches the network: downloads
are served from file:// URLs or a patched urlopen."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from avadet.config import ModelConfig, load_config
from avadet.errors import CheckpointError, ConfigError, WeightsUnavailable
from avadet.models import PUBLISHED_MODELS, zoo

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A fresh torch hub cache under TORCH_HOME (torch.hub.get_dir reads it on each call)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(zoo, "_VERIFIED", set())
    return tmp_path / "torch" / "hub" / "checkpoints"


def fake_entry(url: str, sha256=None, name: str = "fake_model") -> zoo.ZooEntry:
    return dataclasses.replace(zoo.ZOO[0], name=name, url=url, sha256=sha256)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A weights file served from a file:// URL, as a zoo entry named fake_model."""
    source = tmp_path / "server" / "fake_weights.pth"
    source.parent.mkdir()
    source.write_bytes(b"weights" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    def install(sha256):
        entry = fake_entry(source.as_uri(), sha256)
        monkeypatch.setattr(zoo, "ZOO", (*zoo.ZOO, entry))
        return entry

    return source, digest, install


# -- the table ---------------------------------------------------------------------------

def test_names_are_short_unique_lowercase_and_files_distinct():
    names = zoo.zoo_names()
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9_]+", n) and len(n) <= 45 for n in names), names
    files = [e.file_name for e in zoo.ZOO]
    assert len(set(files)) == len(files)  # one cache file per entry


def test_every_entry_is_complete_and_of_a_known_kind():
    for e in zoo.ZOO:
        assert e.source in ("caffe2", "pyslowfast", "pytorchvideo", "mmaction2"), e.name
        assert e.url.startswith("https://"), e.name
        assert e.preprocessing.box_scaling in zoo.BOX_SCALINGS
        assert e.ava_version in ("2.1", "2.2")
        assert 10 < e.val_map < 40
        assert e.reference and e.authors_config and e.pretrain
        expected_scaling = "per_axis" if e.source == "mmaction2" else "long_side"
        assert e.preprocessing.box_scaling == expected_scaling, e.name


def test_checksums_are_the_published_ones_only():
    for e in zoo.ZOO:
        if e.source == "mmaction2":
            # MMAction2's file names end in the first 8 hex digits of the sha256.
            stamp = re.search(r"-([0-9a-f]{8})\.pth$", e.file_name)
            assert stamp and e.sha256 == stamp.group(1), e.name
        else:
            assert e.sha256 is None, e.name  # PySlowFast and pytorchvideo publish none


def test_published_numbers_as_the_authors_list_them():
    by_name = {e.name: e for e in zoo.ZOO}
    # PySlowFast MODEL_ZOO.md, AVA.
    assert by_name["pyslowfast_slowfast_32x2_r101_50_50"].val_map == 29.1
    assert by_name["pyslowfast_slowfast_64x2_r101_50_50"].preprocessing.num_frames == 64
    assert by_name["pyslowfast_slow_8x8_r50"].preprocessing.detection_threshold == 0.9
    # pytorchvideo model_zoo.md AVA (V2.2); MMAction2 metafile.yml.
    assert by_name["pytorchvideo_slowfast_r50_detection"].val_map == 24.67
    assert by_name["mmaction2_slowfast_r50_8x8_ava22"].val_map == 25.90


def test_architectures_are_builders_or_model_config_fields():
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for e in zoo.ZOO:
        if isinstance(e.architecture, str):
            assert e.architecture in PUBLISHED_MODELS, e.name
            cfg = zoo.model_config(e)
            assert cfg.arch in ("slow", "slowfast")
        elif "nonlocal_mode" not in e.architecture:
            assert set(e.architecture) <= fields, e.name
            assert zoo.model_config(e).arch in ("slow", "slowfast")


def test_an_architecture_avadet_lacks_is_a_config_error_naming_the_fields():
    # MMAction2's non-local blocks (embedded Gaussian, sub-sampled, scaled) are not avadet's:
    # an entry asking for them (the zoo lists none) is refused naming the fields.
    base = zoo.find_entry("mmaction2_slowonly_r50_4x16_k400_ava21")
    entry = dataclasses.replace(base, architecture={**base.architecture,
                                                    "nonlocal_mode": "embedded_gaussian"})
    with pytest.raises(ConfigError, match="nonlocal_mode"):
        zoo.model_config(entry)


def test_data_settings_are_what_a_checkpoint_decides():
    from avadet.engine.loading import AUTHORED_DATA_KEYS

    for e in zoo.ZOO:
        assert set(e.data_settings()) == set(AUTHORED_DATA_KEYS), e.name


@pytest.mark.parametrize("entry", zoo.ZOO, ids=lambda e: e.name)
def test_the_test_command_reads_the_right_ava_version_and_valid_settings(entry):
    cfg = load_config(REPO / entry.test_config, list(entry.test_overrides))
    assert f"v{entry.ava_version}" in cfg.data.val_annotations
    assert f"v{entry.ava_version}" in cfg.data.val_exclusions
    assert f"v{entry.ava_version}" in cfg.data.labelmap
    if isinstance(entry.architecture, str):  # the config is of the same architecture
        assert cfg.model.arch == zoo.model_config(entry).arch
        assert cfg.model.depth == zoo.model_config(entry).depth
    # The entry's preprocessing passes the config's own checks.
    settings = [f"data.{k}={v}".replace(" ", "") for k, v in entry.data_settings().items()]
    data = load_config(REPO / entry.test_config, list(entry.test_overrides) + settings).data
    for key, value in entry.data_settings().items():
        assert getattr(data, key) == (value if isinstance(value, str) else pytest.approx(value))
    command = zoo.reproduce_command(entry)
    assert command.startswith(f"avadet test --config {entry.test_config} --checkpoint {entry.name} ")


@pytest.mark.parametrize("name, hub_builder, frames", [
    ("pytorchvideo_slow_r50_detection", "slow_r50_detection", (4,)),
    ("pytorchvideo_slowfast_r50_detection", "slowfast_r50_detection", (8, 32)),
])
def test_pytorchvideo_entries_build_their_hub_models(name, hub_builder, frames, tmp_path,
                                                     randomize):
    """The architecture a pytorchvideo row names loads that hub model's state dict and
    computes its outputs (pytorchvideo's own model, random weights, is the oracle)."""
    import pytorchvideo.models.hub as ptv_hub
    import torch

    from avadet.models import build_model, load_checkpoint

    torch.manual_seed(0)
    reference = randomize(getattr(ptv_hub, hub_builder)(pretrained=False)).eval()
    torch.save(reference.state_dict(), tmp_path / "hub.pt")
    model = build_model(zoo.model_config(zoo.find_entry(name))).eval()
    report = load_checkpoint(model, tmp_path / "hub.pt")
    assert report.source == "pytorchvideo" and report.ok
    gen = torch.Generator().manual_seed(1)
    clip = [torch.randn(1, 3, t, 64, 96, generator=gen) for t in frames]
    boxes = torch.tensor([[0.0, 10.0, 5.0, 50.0, 60.0], [0.0, 30.5, 2.2, 70.1, 40.9]])
    with torch.no_grad():
        expected = reference([c.clone() for c in clip] if len(clip) > 1 else clip[0].clone(), boxes)
        scores = model(clip, boxes)
    assert 0.05 < expected.std().item()  # not saturated
    assert ((scores - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_to_dict_is_json_ready():
    import json

    for e in zoo.ZOO:
        assert json.loads(json.dumps(e.to_dict()))["name"] == e.name


# -- resolve_checkpoint ------------------------------------------------------------------

def test_an_existing_file_is_returned_as_it_is(tmp_path, hub):
    path = tmp_path / "mine.pt"
    path.write_bytes(b"x")
    resolved = zoo.resolve_checkpoint(str(path))
    assert resolved == zoo.ResolvedCheckpoint(path, None)
    assert not hub.exists()


def test_an_unknown_name_is_one_line_with_close_names(hub):
    with pytest.raises(CheckpointError) as err:
        zoo.resolve_checkpoint("pyslowfast_slowfast_32x2_r101")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("pyslowfast_slowfast_32x2_r101: no such file")
    assert "pyslowfast_slowfast_32x2_r101_50_50" in message


@pytest.mark.parametrize("given", ["runs/sf/model_final.pt", "model_final.pyth"])
def test_a_missing_path_is_no_such_file_without_zoo_names(given, hub):
    with pytest.raises(CheckpointError) as err:
        zoo.resolve_checkpoint(given)
    assert str(err.value) == f"{given}: no such file"


def test_a_folder_is_not_a_checkpoint(tmp_path, hub):
    with pytest.raises(CheckpointError, match="is a folder"):
        zoo.resolve_checkpoint(tmp_path)


def test_a_name_downloads_once_into_the_hub_cache(served, hub):
    source, digest, install = served
    entry = install(digest[:8])  # an MMAction2-style prefix
    resolved = zoo.resolve_checkpoint("fake_model", progress=False)
    assert resolved.path == hub / "fake_weights.pth"
    assert resolved.entry == entry
    assert resolved.path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in hub.iterdir()) == ["fake_weights.pth"]  # no temp file left
    source.unlink()  # a second resolve must not need the server
    assert zoo.resolve_checkpoint("FAKE_MODEL").path == resolved.path


def test_a_full_published_sha256_is_checked_too(served, hub):
    _, digest, install = served
    install(digest)
    assert zoo.resolve_checkpoint("fake_model", progress=False).path.is_file()


def test_a_download_with_the_wrong_hash_keeps_nothing(served, hub):
    _, digest, install = served
    install("0" * 8)
    expected = f"sha256 {digest} does not match the published 00000000"
    with pytest.raises(CheckpointError, match=expected):
        zoo.resolve_checkpoint("fake_model", progress=False)
    assert list(hub.iterdir()) == []


def test_a_damaged_cached_file_names_both_hashes_and_says_delete(served, hub):
    _, digest, install = served
    install(digest[:8])
    hub.mkdir(parents=True)
    (hub / "fake_weights.pth").write_bytes(b"truncated")
    with pytest.raises(CheckpointError) as err:
        zoo.resolve_checkpoint("fake_model")
    message = str(err.value)
    assert "\n" not in message and "delete it" in message
    assert str(hub / "fake_weights.pth") in message
    assert digest[:8] in message and hashlib.sha256(b"truncated").hexdigest() in message


def test_a_cached_file_is_hashed_once(served, hub, monkeypatch):
    _, digest, install = served
    install(digest[:8])
    zoo.resolve_checkpoint("fake_model", progress=False)
    calls = []
    monkeypatch.setattr(zoo, "sha256_file", lambda p: calls.append(p) or digest)
    zoo.resolve_checkpoint("fake_model")
    zoo.resolve_checkpoint("fake_model")
    assert calls == []


def test_offline_is_one_line_naming_the_url_and_where_to_put_it(served, hub, monkeypatch):
    _, digest, install = served
    entry = install(digest[:8])

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsUnavailable) as err:
        zoo.resolve_checkpoint("fake_model")
    message = str(err.value)
    assert "\n" not in message
    assert entry.url in message and str(hub / "fake_weights.pth") in message
    assert list(hub.iterdir()) == []  # the temp file is gone


class FakeResponse:
    """What urlopen returns: headers and read(n); ``fail`` is raised after the first block."""

    def __init__(self, data: bytes, length: int, fail: Exception = None):
        self.headers = {"Content-Length": str(length)}
        self.blocks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
        self.fail = fail

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n):
        if self.fail is not None and len(self.blocks) < 2:
            raise self.fail
        return self.blocks.pop(0) if self.blocks else b""


def test_a_download_cut_short_is_weights_unavailable_and_keeps_nothing(hub):
    opener = lambda *a, **k: FakeResponse(b"x" * 5000, length=9000)  # noqa: E731
    with pytest.raises(WeightsUnavailable, match="ended after 5000 of 9000 bytes"):
        zoo.download_checkpoint("https://example.invalid/w.pth", hub / "w.pth", opener=opener,
                                progress=False)
    assert list(hub.iterdir()) == []


@pytest.mark.parametrize("failure", [ConnectionResetError(104, "Connection reset by peer"),
                                     TimeoutError("timed out"), "incomplete"])
def test_a_connection_failing_midway_is_weights_unavailable(hub, failure):
    from http.client import IncompleteRead

    failure = IncompleteRead(b"x") if failure == "incomplete" else failure
    opener = lambda *a, **k: FakeResponse(b"x" * 9000, 9000, failure)  # noqa: E731
    with pytest.raises(WeightsUnavailable) as err:
        zoo.download_checkpoint("https://example.invalid/w.pth", hub / "w.pth", opener=opener,
                                progress=False)
    assert "https://example.invalid/w.pth" in str(err.value) and "\n" not in str(err.value)
    assert list(hub.iterdir()) == []


def test_a_full_disk_is_not_taken_for_the_network(hub, monkeypatch):
    import errno
    import os

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()
            return False

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zoo.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    opener = lambda *a, **k: FakeResponse(b"x" * 9000, 9000)  # noqa: E731
    with pytest.raises(OSError) as err:
        zoo.download_checkpoint("https://example.invalid/w.pth", hub / "w.pth", opener=opener,
                                progress=False)
    assert err.value.errno == errno.ENOSPC and not isinstance(err.value, WeightsUnavailable)
    assert list(hub.iterdir()) == []


def test_no_download_when_not_allowed(hub):
    with pytest.raises(WeightsUnavailable) as err:
        zoo.resolve_checkpoint("pyslowfast_slow_8x8_r50", download=False)
    message = str(err.value)
    assert "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/ava/C2D_8x8_R50.pkl" in message
    assert str(hub / "C2D_8x8_R50.pkl") in message


def test_torch_home_moves_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    entry = zoo.find_entry("pytorchvideo_slowfast_r50_detection")
    expected = tmp_path / "elsewhere" / "hub" / "checkpoints" / "SLOWFAST_8x8_R50_DETECTION.pyth"
    assert zoo.cached_path(entry) == expected
