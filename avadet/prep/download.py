"""Download AVA's annotation archives and companion files: resumable, verified, unpacked.

Sources (public URLs of the AVA release and of PySlowFast / Long-Term Feature Banks):

- ``ava_v2.2.zip`` / ``ava_v2.1.zip``: https://research.google.com/ava/download/ and the S3
  mirror https://s3.amazonaws.com/ava-dataset/annotations/ (tried in that order).
- Person boxes of the LFB detector used by PySlowFast (``ava_{train,val,test}_predicted_boxes
  .csv``) and PySlowFast frame lists, from https://dl.fbaipublicfiles.com/.
- Video file lists ``ava_file_names_{trainval,test}_v2.1.txt`` from the S3 mirror.

Resuming: bytes go to ``<name>.part``; a new attempt asks for the rest with an HTTP ``Range``
request and appends (a server that ignores ranges answers 200 and the file restarts from 0).
Verification: the size announced by the server; a published sha256 where one is known (none
is published for these files, so none is hard-coded); zip archives are tested member by
member (CRC). The sha256 of every finished file is recorded in ``download_manifest.json`` so
a later run can tell a complete file from a damaged one without the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence, Union

from tqdm import tqdm

from avadet.errors import AvadetError, FormatError
from avadet.io import atomic_write

PathLike = Union[str, Path]
LOG = logging.getLogger(__name__)
MANIFEST = "download_manifest.json"
_GOOGLE = "https://research.google.com/ava/download/"
_S3 = "https://s3.amazonaws.com/ava-dataset/annotations/"
_LFB = "https://dl.fbaipublicfiles.com/video-long-term-feature-banks/data/ava/"


class DownloadError(AvadetError):
    """A file could not be downloaded or failed verification; the message names the URL."""


@dataclass(frozen=True)
class Artifact:
    """One file to fetch: mirrors tried in order, optional known size / sha256, unpacking."""

    name: str
    urls: tuple[str, ...]
    sha256: Optional[str] = None  # only a checksum published by the source; never guessed
    size: Optional[int] = None
    unpack: bool = False  # a zip whose members are extracted (flattened) next to it


def ava_artifacts(version: str = "2.2", *, boxes: bool = True, frame_lists: bool = False,
                  file_lists: bool = False) -> list[Artifact]:
    """The files of an AVA annotation download (``version`` "2.1" or "2.2")."""
    if version not in ("2.1", "2.2"):
        raise AvadetError(f"unknown AVA version {version!r}; choose 2.1 or 2.2")
    zip_name = f"ava_v{version}.zip"
    items = [Artifact(zip_name, (_GOOGLE + zip_name, _S3 + zip_name), unpack=True)]
    if boxes:
        items += [Artifact(f"ava_{s}_predicted_boxes.csv", (f"{_LFB}annotations/ava_{s}_predicted_boxes.csv",))
                  for s in ("train", "val", "test")]
    if frame_lists:
        items += [Artifact(f"frame_lists/{s}.csv", (f"{_LFB}frame_lists/{s}.csv",)) for s in ("train", "val")]
    if file_lists:
        items += [Artifact(f"ava_file_names_{s}_v2.1.txt", (f"{_S3}ava_file_names_{s}_v2.1.txt",))
                  for s in ("trainval", "test")]
    return items


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _total_size(response, offset: int) -> Optional[int]:
    """Full file size from ``Content-Range: bytes a-b/total`` or ``Content-Length``."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def download_file(
    url: str,
    dest: PathLike,
    *,
    size: Optional[int] = None,
    sha256: Optional[str] = None,
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = 1 << 16,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming with HTTP Range.

    Network errors are retried ``retries`` times, each attempt continuing the ``.part`` file.
    The finished file must match ``size`` / the server's announced size and ``sha256`` when
    given; then it is renamed to ``dest``. Raises :class:`DownloadError` naming the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    total: Optional[int] = size
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        if total is not None and offset == total:
            break  # the previous attempt got every byte
        request = urllib.request.Request(url, headers={"User-Agent": "avadet-prep"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = getattr(response, "status", 200)
                if offset and status != 206:
                    LOG.info("%s: server ignored the range request; starting over", url)
                    offset = 0
                announced = _total_size(response, offset)
                if announced is not None:
                    if total is not None and announced != total:
                        raise DownloadError(f"{url}: server announces {announced} bytes, expected {total}")
                    total = announced
                with open(part, "ab" if offset else "wb") as handle, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name,
                    disable=not progress, leave=False,
                ) as bar:
                    while block := response.read(chunk_size):
                        handle.write(block)
                        bar.update(len(block))
            got = part.stat().st_size
            if total is None or got == total:
                total = got
                break
            LOG.warning("%s: connection ended at %d of %d bytes; resuming", url, got, total)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and total is not None and offset == total:
                break
            if exc.code == 416:  # the .part is longer than the file: start over
                part.unlink(missing_ok=True)
                continue
            if exc.code < 500:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            LOG.warning("%s: HTTP %d (attempt %d of %d)", url, exc.code, attempt + 1, retries + 1)
        except (urllib.error.URLError, HTTPException, socket.timeout, ConnectionError, OSError) as exc:
            LOG.warning("%s: %s (attempt %d of %d)", url, exc, attempt + 1, retries + 1)
        if attempt < retries:
            time.sleep(min(2.0**attempt, 10.0) * 0.1)
    else:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"{url}: incomplete after {retries + 1} attempts ({got} bytes"
                            f"{f' of {total}' if total else ''}); run again to resume")
    got = part.stat().st_size
    if total is not None and got != total:
        raise DownloadError(f"{url}: got {got} bytes, expected {total}; run again to resume")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(f"{url}: sha256 {actual} does not match the published {sha256}")
    os.replace(part, dest)
    return dest


def verify_zip(path: PathLike) -> list[str]:
    """Test every member's CRC; return the member names. Raises FormatError if damaged."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise FormatError(path, f"zip member {bad!r} is corrupt (CRC mismatch)")
            return archive.namelist()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(path, f"not a valid zip archive: {exc}") from None


def unpack_zip(path: PathLike, out_dir: PathLike) -> list[Path]:
    """Extract the files of a zip into ``out_dir`` without its folders (``unzip -j``).

    Members are written atomically; names are reduced to their base name, so no member can
    escape ``out_dir``. Returns the paths written.
    """
    out_dir = Path(out_dir)
    written = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename.replace("\\", "/")).name
            if info.is_dir() or not name or name.startswith("."):
                continue
            target = out_dir / name
            with archive.open(info) as src, atomic_write(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            written.append(target)
    return written


def _read_manifest(out_dir: Path) -> dict:
    try:
        return json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _verified(path: Path, record: Optional[dict]) -> bool:
    return bool(record) and path.exists() and path.stat().st_size == record.get("size") \
        and sha256_file(path) == record.get("sha256")


def download_annotations(
    out_dir: PathLike,
    artifacts: Sequence[Artifact],
    *,
    retries: int = 3,
    timeout: float = 60.0,
    keep_archives: bool = True,
    progress: bool = True,
) -> dict[str, dict]:
    """Fetch ``artifacts`` into ``out_dir``: skip verified files, resume partial ones, try
    mirrors in order, test and unpack zips, and record each file in ``download_manifest.json``.

    Returns the manifest entries ``{name: {url, size, sha256, members?}}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(out_dir)
    for item in artifacts:
        dest = out_dir / item.name
        record = manifest.get(item.name)
        if _verified(dest, record) and (item.sha256 is None or record["sha256"] == item.sha256):
            LOG.info("%s: already downloaded and verified", dest)
        else:
            errors = []
            for url in item.urls:
                try:
                    download_file(url, dest, size=item.size, sha256=item.sha256, retries=retries,
                                  timeout=timeout, progress=progress)
                    break
                except DownloadError as exc:
                    errors.append(str(exc))
                    LOG.warning("%s", exc)
            else:
                raise DownloadError(f"{item.name}: every mirror failed: " + "; ".join(errors))
            record = {"url": url, "size": dest.stat().st_size, "sha256": sha256_file(dest),
                      "sha256_source": "published" if item.sha256 else "computed after download"}
        if item.unpack:
            try:
                members = verify_zip(dest)
            except FormatError:
                dest.unlink()  # a damaged archive is fetched again next time
                manifest.pop(item.name, None)
                raise
            record["members"] = [str(p.name) for p in unpack_zip(dest, out_dir)]
            LOG.info("%s: %d members verified and unpacked", dest, len(members))
            if not keep_archives:
                dest.unlink()
        manifest[item.name] = record
        with atomic_write(out_dir / MANIFEST) as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
    return manifest
