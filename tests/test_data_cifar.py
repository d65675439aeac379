"""CIFAR readers (python + binary, CIFAR-10 + CIFAR-100), the archive writer, dataset specs."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from resnetlab.data import describe_dataset, load_cifar, load_dataset, train_val_split
from resnetlab.data.cifar import CIFAR10_CLASSES, LAYOUTS
from resnetlab.data.cifar_archive import write_cifar_archive


def make_data(n: int = 120, n_classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, n_classes, (n,), generator=g)
    return images, labels


def extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_round_trip_through_official_layout(tmp_path: Path, name: str, fmt: str) -> None:
    images, labels = make_data(n_classes=10 if name == "cifar10" else 100)
    archive = write_cifar_archive(tmp_path / "a.tar.gz", images, labels, fmt, name)
    with tarfile.open(archive) as tar:
        members = set(tar.getnames())
    layout = LAYOUTS[(name, fmt)]
    assert {f"{layout.folder}/{f}" for f in (*layout.train_files, *layout.test_files, layout.meta_file)} <= members
    root = extract(archive, tmp_path / "x")
    # root may be the parent of the extracted folder or the folder itself.
    for where in (root, root / layout.folder):
        train, test = load_cifar(where, "train", name), load_cifar(where, "test", name)
        assert torch.equal(train.images, images[:100]) and torch.equal(train.labels, labels[:100])
        assert torch.equal(test.images, images[100:]) and torch.equal(test.labels, labels[100:])
        assert len(train.classes) == (10 if name == "cifar10" else 100)
    if name == "cifar10":
        assert train.classes == CIFAR10_CLASSES


def test_binary_record_layout_by_hand(tmp_path: Path) -> None:
    """One CIFAR-100 record written byte by byte: <coarse><fine><R plane><G plane><B plane>."""
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    pixels = (np.arange(3072) % 251).astype(np.uint8)
    (folder / "train.bin").write_bytes(bytes([7, 42]) + pixels.tobytes())
    (folder / "fine_label_names.txt").write_text("\n".join(f"c{i}" for i in range(100)) + "\n")
    data = load_cifar(tmp_path, "train", "cifar100")
    assert data.labels.tolist() == [42]  # the fine label, not the coarse 7
    c, row, col = 2, 5, 9
    assert int(data.images[0, c, row, col]) == (c * 1024 + row * 32 + col) % 251
    assert data.classes[42] == "c42"


def test_python_pickle_with_byte_keys(tmp_path: Path) -> None:
    """Batches pickled with byte-string keys (as Python 2 wrote them) read the same."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [3, 1]}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in CIFAR10_CLASSES]}))
    test = load_cifar(folder, "test")
    assert test.labels.tolist() == [3, 1]
    assert int(test.images[1, 0, 0, 1]) == (3072 + 1) % 256
    assert test.classes == CIFAR10_CLASSES


@pytest.fixture
def cifar10_python(tmp_path: Path) -> Path:
    images, labels = make_data()
    return extract(write_cifar_archive(tmp_path / "a.tar.gz", images, labels), tmp_path / "x") / "cifar-10-batches-py"


def test_missing_batch_names_the_file(cifar10_python: Path) -> None:
    (cifar10_python / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar(cifar10_python, "train")


def test_corrupt_pickle_names_the_file(cifar10_python: Path) -> None:
    (cifar10_python / "data_batch_2").write_bytes(b"\x80\x02}q\x00garbage")
    with pytest.raises(ValueError, match="data_batch_2"):
        load_cifar(cifar10_python, "train")


def test_pickle_cannot_run_code(cifar10_python: Path, tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (cifar10_python / "test_batch").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="test_batch"):
        load_cifar(cifar10_python, "test")
    assert not (tmp_path / "pwned").exists()


def test_truncated_binary_names_the_file(tmp_path: Path) -> None:
    images, labels = make_data()
    root = extract(write_cifar_archive(tmp_path / "b.tar.gz", images, labels, "binary"), tmp_path / "x")
    path = root / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="test_batch.bin.*truncated"):
        load_cifar(root, "test")


def test_no_release_lists_what_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py, cifar-10-batches-bin"):
        load_cifar(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_cifar(tmp_path, "val")


@pytest.mark.parametrize("fmt", ["python", "binary"])
def test_load_dataset_detects_release_one_level_down(tmp_path: Path, fmt: str) -> None:
    images, labels = make_data()
    extract(write_cifar_archive(tmp_path / "a.tar.gz", images, labels, fmt), tmp_path / "data" / "downloads")
    test = load_dataset(tmp_path / "data", "test")
    assert torch.equal(test.images, images[100:])
    folder = "cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin"
    assert describe_dataset(str(tmp_path / "data")) == (
        f"CIFAR-10 (official {fmt} release {tmp_path / 'data' / 'downloads' / folder})"
    )


def test_load_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*cifar-10-batches-py"):
        load_dataset(tmp_path / "nope", "train")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="no dataset recognised.*train/<class>/ and test/<class>/"):
        load_dataset(tmp_path / "junk", "train")
    with pytest.raises(ValueError, match="integer"):
        load_dataset("synthetic:many", "train")


def test_train_val_split_is_the_papers_45k_5k() -> None:
    train, val = train_val_split(50_000)
    assert (len(train), len(val)) == (45_000, 5_000)
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(50_000))
    assert torch.equal(val, train_val_split(50_000, seed=0)[1])
    assert not torch.equal(val, train_val_split(50_000, seed=1)[1])
    small_train, small_val = train_val_split(2_000)  # capped at 10% of n
    assert (len(small_train), len(small_val)) == (1_800, 200)
    assert len(train_val_split(9)[1]) == 0
    with pytest.raises(ValueError, match="val_size"):
        train_val_split(100, val_size=-1)
