"""Fetch an official CIFAR archive: checksummed, resumable and atomic (urllib only).

The archive is downloaded to ``<file>.part`` (continued with an HTTP Range request after an
interruption), its md5 checked against the release's published checksum, then extracted into a
temporary folder beside the target and renamed into place, so a half-written dataset is never
visible to ``load_cifar``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cifar import FORMATS, LAYOUTS, NAMES

BASE_URL = "https://www.cs.toronto.edu/~kriz/"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Archive:
    filename: str
    md5: str
    folder: str  # the folder the archive extracts to

    @property
    def url(self) -> str:
        return BASE_URL + self.filename


ARCHIVES: dict[tuple[str, str], Archive] = {
    ("cifar10", "python"): Archive(
        "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", LAYOUTS[("cifar10", "python")].folder
    ),
    ("cifar10", "binary"): Archive(
        "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", LAYOUTS[("cifar10", "binary")].folder
    ),
    ("cifar100", "python"): Archive(
        "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", LAYOUTS[("cifar100", "python")].folder
    ),
    ("cifar100", "binary"): Archive(
        "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", LAYOUTS[("cifar100", "binary")].folder
    ),
}


class DownloadError(OSError):
    """The archive could not be fetched; the message says how to install it by hand."""


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manual_steps(url: str, archive_path: Path, md5: str) -> str:
    return (
        f"to install it by hand, download {url} on a machine with internet access, "
        f"check that its md5 is {md5}, put it at {archive_path} and run this again "
        f"(an archive already there is verified and extracted without the network)"
    )


def _fetch(url: str, part: Path, timeout: float, progress: Callable[[int, int | None], None] | None) -> None:
    """Download ``url`` into ``part``, continuing what is already there when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "resnetlab"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            return  # the .part already holds the whole file; the checksum decides
        raise
    with response:
        status = response.status
        total: int | None = None
        length = response.headers.get("Content-Length")
        if status == 206:
            # Only trust a partial response that starts exactly where our file ends.
            content_range = response.headers.get("Content-Range", "")
            start = content_range.split(" ", 1)[-1].split("-", 1)[0]
            if start != str(have):
                raise DownloadError(f"{url}: server resumed at byte {start!r}, expected {have}")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server ignored Range: start over cleanly
        if length is not None:
            total = have + int(length)
        received = have
        with open(part, mode) as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as error:
                    out.write(error.partial)
                    received += len(error.partial)
                    break
                if not block:
                    break
                out.write(block)
                received += len(block)
                if progress is not None:
                    progress(received, total)
    if total is not None and received < total:
        raise DownloadError(
            f"{url}: connection closed after {received} of {total} bytes; run again to resume from {part}"
        )


def _safe_members(tar: tarfile.TarFile, folder: str, archive_path: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"{archive_path}: unsafe archive member {m.name!r}")
    if not any(Path(m.name).parts[:1] == (folder,) for m in members):
        raise ValueError(f"{archive_path}: archive does not contain the folder {folder}/")
    return members


def extract_archive(archive_path: Path, root: Path, folder: str) -> Path:
    """Extract into a temporary folder under ``root``, then rename ``folder`` into place."""
    target = root / folder
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive_path, "r:gz") as tar:
                tar.extractall(tmp, members=_safe_members(tar, folder, archive_path), filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ValueError(
                f"{archive_path}: corrupt or truncated archive ({error}); delete it and download again"
            ) from None
        if target.exists():
            raise FileExistsError(f"{target} appeared while extracting; remove it and run again")
        os.rename(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def download_cifar(
    name: str,
    root: str | Path,
    *,
    fmt: str = "python",
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    keep_archive: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download, verify and extract one official CIFAR archive; returns the extracted folder.

    Nothing is fetched when the folder already exists, and an archive already at
    ``root/<filename>`` with the right md5 is extracted without the network; one with another md5
    is left alone and refused (it may be the user's own file). ``url``/``md5``
    override the official location and checksum (tests serve a generated archive locally).
    """
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    archive = ARCHIVES[(name, fmt)]
    url = url or archive.url
    md5 = (md5 or archive.md5).lower()
    root = Path(root)
    for folder in (root, *root.parents):  # the first existing one must be a folder, not a file
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder; give a folder as --root", str(folder))
            break
    root.mkdir(parents=True, exist_ok=True)
    target = root / archive.folder
    if target.is_dir():
        return target
    if target.exists():
        raise FileExistsError(
            errno.EEXIST, f"is in the way of the dataset folder {archive.folder}/; move it away", str(target)
        )
    archive_path = root / archive.filename
    if archive_path.exists():
        # We only ever put a verified archive under this name (downloads go to .part first), so a
        # mismatch is someone's own file: never delete it.
        got = file_md5(archive_path)
        if got != md5:
            raise ValueError(
                f"{archive_path} is already there with md5 {got}, not the expected {md5}; "
                "move it away (or delete it) to download a fresh copy, or pass --md5 if it is the archive you mean"
            )
    if not archive_path.exists():
        part = archive_path.with_name(archive_path.name + ".part")
        try:
            _fetch(url, part, timeout, progress)
        except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise DownloadError(
                f"could not download {url} ({reason}); {_manual_steps(url, archive_path, md5)}"
            ) from None
        got = file_md5(part)
        if got != md5:
            part.unlink()
            raise ValueError(
                f"checksum mismatch for {url}: md5 {got}, expected {md5}; the download was deleted, "
                f"run again or {_manual_steps(url, archive_path, md5)}"
            )
        os.replace(part, archive_path)
    folder = extract_archive(archive_path, root, archive.folder)
    if not keep_archive:
        archive_path.unlink()
    return folder
