"""The one way anything is written to disk: beside the target, then renamed into place.

A run can be killed at any instant (Ctrl-C, SIGTERM from a scheduler, kill -9, a full disk), and a
resumed run trusts ``checkpoints/last.pt``, ``meta.json`` and the rest without re-checking them. So
no file is ever written in place: ``staged_output`` hands out a temporary path in the same folder
(the rename never crosses file systems), flushes it to disk, and only then gives it the real name in
one ``rename``. A reader sees the old file or the whole new one, never a torn one.

Temporaries are named after their writer's pid, so leftovers of a killed writer are recognised and
removed on the next write while a live writer's file is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder: str | Path, pattern: re.Pattern) -> list[Path]:
    """Delete the files in ``folder`` whose names match ``pattern`` (a regex with a ``pid`` group)
    and whose writer process no longer exists (a live pid may still be writing)."""
    removed = []
    try:
        candidates = [(p, pattern.fullmatch(p.name)) for p in Path(folder).iterdir()]
    except OSError:
        return removed
    for candidate, match in candidates:
        if match is None:
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass  # already gone, or not ours to delete: leave it
    return removed


def refuse_existing(path: str | Path, overwrite: bool) -> None:
    """An output file is replaced only when asked; a folder is never an output file."""
    path = Path(path)
    for parent in path.parents:  # the first existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder", str(parent))
            break
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name for --out", str(path))
    if path.exists() and not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists; pass --overwrite to replace it", str(path))


def _temporary_names(path: Path, keep_suffix: bool) -> tuple[Path, re.Pattern]:
    """This process's temporary for ``path``, and the pattern of any writer's temporary for it. In
    run-directory naming that is any file of the same suffix in the folder (``.last.pt.<pid>.tmp``
    also matches ``best.pt``'s: a kill mid-write of either is cleaned up by the next checkpoint)."""
    pid = os.getpid()
    if keep_suffix:  # exporters and ``save_weights`` choose the format by the suffix
        stale = re.escape(f".{path.stem}.") + r"(?P<pid>\d+)" + re.escape(f".tmp{path.suffix}")
        return path.with_name(f".{path.stem}.{pid}.tmp{path.suffix}"), re.compile(stale)
    same_kind = rf"[^/]*{re.escape(path.suffix)}" if path.suffix else re.escape(path.name)
    return path.with_name(f".{path.name}.{pid}.tmp"), re.compile(rf"\.{same_kind}\.(?P<pid>\d+)\.tmp")


def _fsync(path: Path) -> None:
    """The bytes are on disk before the rename makes them the file (else a power cut after the
    rename could leave an empty file under the real name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_output(path: str | Path, *, overwrite: bool = False, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; after the block succeeds it becomes ``path`` in one
    rename. On any failure only the temporary is removed, so a file already at ``path`` is never
    lost, and without ``overwrite`` it is never replaced.

    ``keep_suffix``: the temporary is ``.NAME.<pid>.tmp.SUFFIX`` (for writers that pick a format by
    suffix), else ``.NAME.SUFFIX.<pid>.tmp`` (what ``outputs.is_temporary`` recognises in a run
    directory).
    """
    path = Path(path)
    refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, stale = _temporary_names(path, keep_suffix)
    remove_stale_temporaries(path.parent, stale)  # left by a writer killed mid-write
    try:
        # Created here, so an unwritable folder is one clear OSError, not a writer's traceback.
        tmp.open("wb").close()
    except PermissionError:
        raise PermissionError(
            errno.EACCES, "Permission denied (cannot write into this folder)", str(path.parent)
        ) from None
    try:
        yield tmp
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if nothing took that name while we were writing."""
    try:
        os.link(tmp, path)  # atomic, and fails rather than replace a file that appeared meanwhile
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "appeared while writing; pass --overwrite to replace it", str(path)
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        refuse_existing(path, overwrite=False)
        os.replace(tmp, path)


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (run-directory naming of the temporary)."""
    with staged_output(path, overwrite=True, keep_suffix=False) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, payload: dict, *, sort_keys: bool = False) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=sort_keys, default=str) + "\n")
