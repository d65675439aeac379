"""A writer of archives laid out byte for byte like the official CIFAR releases (``cifar.py``
reads them): the tests and the offline download checks make their own "releases" with it, so
that the readers are exercised on the real layout without the 170 MB download."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from .cifar import CIFAR10_CLASSES, LAYOUTS, PIXELS, _check


def _add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 1_239_000_000  # fixed, so the archive (and its md5) is reproducible
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_cifar_archive(
    path: str | Path,
    images: torch.Tensor,
    labels: torch.Tensor,
    fmt: str = "python",
    name: str = "cifar10",
    *,
    test_images: torch.Tensor | None = None,
    test_labels: torch.Tensor | None = None,
    classes: tuple[str, ...] | None = None,
) -> Path:
    """Write a ``.tar.gz`` laid out exactly like the official release (used by tests).

    ``images`` (uint8 ``[N, 3, 32, 32]``) and ``labels`` form the training split; without
    ``test_images`` the last sixth of them becomes the test split (the release's 50k/10k ratio).
    CIFAR-10 training images are spread over the five ``data_batch_*`` files in order.
    """
    _check(name, fmt=fmt)
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != (3, 32, 32):
        raise ValueError(f"images must be uint8 [N, 3, 32, 32], got {images.dtype} {tuple(images.shape)}")
    if test_images is None:
        n_test = len(images) // 6
        images, test_images = images[: len(images) - n_test], images[len(images) - n_test :]
        labels, test_labels = labels[: len(labels) - n_test], labels[len(labels) - n_test :]
    if test_labels is None:
        raise ValueError("test_labels must be given together with test_images")
    n_classes = 100 if name == "cifar100" else 10
    classes = classes or (CIFAR10_CLASSES if name == "cifar10" else tuple(f"class_{i:02d}" for i in range(100)))
    if len(classes) != n_classes:
        raise ValueError(f"{name} needs {n_classes} class names, got {len(classes)}")
    layout = LAYOUTS[(name, fmt)]
    train_parts = np.array_split(np.arange(len(images)), len(layout.train_files))

    def payload(x: torch.Tensor, y: torch.Tensor, batch_label: str) -> bytes:
        data = x.reshape(len(x), PIXELS).numpy()
        fine = y.numpy().astype(np.int64)
        coarse = fine // 5  # a stand-in for the real 20 superclasses; readers ignore it
        if fmt == "binary":
            heads = [coarse[:, None], fine[:, None]] if name == "cifar100" else [fine[:, None]]
            return np.concatenate([*(h.astype(np.uint8) for h in heads), data], axis=1).tobytes()
        record = {"batch_label": batch_label, "data": data, "filenames": [f"img_{i:05d}.png" for i in range(len(x))]}
        if name == "cifar100":
            record.update(fine_labels=fine.tolist(), coarse_labels=coarse.tolist())
        else:
            record["labels"] = fine.tolist()
        return pickle.dumps(record, protocol=2)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # gzip's header carries a timestamp; fix it so the same inputs give the same md5.
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for i, (file, index) in enumerate(zip(layout.train_files, train_parts)):
            idx = torch.from_numpy(index)
            _add_bytes(
                tar,
                f"{layout.folder}/{file}",
                payload(images[idx], labels[idx], f"training batch {i + 1} of {len(train_parts)}"),
            )
        _add_bytes(
            tar,
            f"{layout.folder}/{layout.test_files[0]}",
            payload(torch.as_tensor(test_images), torch.as_tensor(test_labels), "testing batch 1 of 1"),
        )
        if fmt == "binary":
            _add_bytes(tar, f"{layout.folder}/{layout.meta_file}", ("\n".join(classes) + "\n\n").encode())
            if name == "cifar100":
                coarse_names = "\n".join(f"superclass_{i:02d}" for i in range(20)) + "\n"
                _add_bytes(tar, f"{layout.folder}/coarse_label_names.txt", coarse_names.encode())
        else:
            meta = (
                {"fine_label_names": list(classes), "coarse_label_names": [f"superclass_{i:02d}" for i in range(20)]}
                if name == "cifar100"
                else {"label_names": list(classes), "num_cases_per_batch": len(train_parts[0]), "num_vis": PIXELS}
            )
            _add_bytes(tar, f"{layout.folder}/{layout.meta_file}", pickle.dumps(meta, protocol=2))
    return path
