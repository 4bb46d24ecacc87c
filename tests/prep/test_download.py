"""Resumable, verified downloads against a local HTTP server (no network)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from avadet.errors import FormatError
from avadet.prep.download import (
    MANIFEST,
    Artifact,
    DownloadError,
    ava_artifacts,
    download_annotations,
    download_file,
)


class _Server:
    """Serves ``files`` with Range support; can cut a response short or ignore ranges."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before dropping, once
        self.ignore_range = False
        self.requests: list[tuple[str, str]] = []  # (path, Range header)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range", "")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng.startswith("bytes=") and not server.ignore_range:
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ava_v2.2/ava_val_v2.2.csv", "vid,0902,0.1,0.1,0.5,0.9,12,0\n" * 2000)
        z.writestr("ava_v2.2/ava_action_list_v2.2.pbtxt", 'item {\n  name: "stand"\n  id: 12\n}\n')
        z.writestr("../evil.txt", "must not escape")
    return buf.getvalue()


def test_interrupted_download_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 400
    server.files["/f.bin"] = data
    server.cut_after["/f.bin"] = 10_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(server.url + "/f.bin", dest, retries=0, progress=False)
    part = tmp_path / "f.bin.part"
    assert not dest.exists() and part.stat().st_size == 10_000
    download_file(server.url + "/f.bin", dest, retries=0, progress=False)
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests[-1] == ("/f.bin", "bytes=10000-")


def test_retries_resume_within_one_call(server: _Server, tmp_path: Path) -> None:
    data = b"x" * 50_000
    server.files["/g"] = data
    server.cut_after["/g"] = 123
    sha = hashlib.sha256(data).hexdigest()
    download_file(server.url + "/g", tmp_path / "g", sha256=sha, retries=2, progress=False)
    assert (tmp_path / "g").read_bytes() == data
    assert [r for _, r in server.requests] == ["", "bytes=123-"]


def test_server_ignoring_range_restarts(server: _Server, tmp_path: Path) -> None:
    data = b"abc" * 10_000
    server.files["/h"] = data
    (tmp_path / "h.part").write_bytes(b"abc" * 5)
    server.ignore_range = True
    download_file(server.url + "/h", tmp_path / "h", retries=0, progress=False)
    assert (tmp_path / "h").read_bytes() == data


def test_checksum_and_size_mismatch_fail(server: _Server, tmp_path: Path) -> None:
    server.files["/k"] = b"hello"
    with pytest.raises(DownloadError, match="sha256"):
        download_file(server.url + "/k", tmp_path / "k", sha256="0" * 64, retries=0, progress=False)
    assert not (tmp_path / "k").exists()
    with pytest.raises(DownloadError, match="expected 6"):
        download_file(server.url + "/k", tmp_path / "k2", size=6, retries=0, progress=False)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url + "/nope", tmp_path / "n", retries=0, progress=False)


def test_download_annotations_unpacks_verifies_and_records(server: _Server, tmp_path: Path) -> None:
    archive = _zip_bytes()
    server.files["/ava_v2.2.zip"] = archive
    server.files["/boxes.csv"] = b"vid,0902,0.1,0.1,0.5,0.9,-1,0.98\n"
    server.cut_after["/ava_v2.2.zip"] = len(archive) // 3
    items = [
        Artifact("ava_v2.2.zip", (server.url + "/missing.zip", server.url + "/ava_v2.2.zip"), unpack=True),
        Artifact("ava_val_predicted_boxes.csv", (server.url + "/boxes.csv",)),
    ]
    out = tmp_path / "annotations"
    manifest = download_annotations(out, items, retries=1, progress=False)
    assert (out / "ava_val_v2.2.csv").read_text().count("\n") == 2000
    assert (out / "ava_action_list_v2.2.pbtxt").exists()
    assert (out / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    record = manifest["ava_v2.2.zip"]
    assert record["sha256"] == hashlib.sha256(archive).hexdigest()
    assert record["url"].endswith("/ava_v2.2.zip") and record["size"] == len(archive)
    assert record["sha256_source"] == "computed after download"
    assert json.loads((out / MANIFEST).read_text()) == manifest
    # A second run finds everything verified and asks the server nothing.
    before = len(server.requests)
    download_annotations(out, items, progress=False)
    assert len(server.requests) == before
    # A damaged file on disk no longer matches the manifest: it is fetched again.
    (out / "ava_val_predicted_boxes.csv").write_text("damaged")
    download_annotations(out, items, progress=False)
    assert (out / "ava_val_predicted_boxes.csv").read_bytes() == server.files["/boxes.csv"]


def test_corrupt_zip_is_rejected_and_removed(server: _Server, tmp_path: Path) -> None:
    archive = bytearray(_zip_bytes())
    archive[60] ^= 0xFF  # inside the first member's compressed data
    server.files["/bad.zip"] = bytes(archive)
    with pytest.raises(FormatError, match="bad.zip|corrupt|zip"):
        download_annotations(tmp_path, [Artifact("bad.zip", (server.url + "/bad.zip",), unpack=True)],
                             retries=0, progress=False)
    assert not (tmp_path / "bad.zip").exists()


def test_ava_artifacts_point_at_the_public_release() -> None:
    items = {a.name: a for a in ava_artifacts("2.2", frame_lists=True, file_lists=True)}
    assert items["ava_v2.2.zip"].urls == (
        "https://research.google.com/ava/download/ava_v2.2.zip",
        "https://s3.amazonaws.com/ava-dataset/annotations/ava_v2.2.zip",
    )
    assert items["ava_v2.2.zip"].sha256 is None  # none is published; never invent one
    assert "ava_val_predicted_boxes.csv" in items and "frame_lists/train.csv" in items
    assert "ava_file_names_trainval_v2.1.txt" in items
