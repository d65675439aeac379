"""``download_cifar`` against a local HTTP server: checksum, resume, atomicity, offline errors."""

from __future__ import annotations

import argparse
import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from resnetlab.cli import UserError
from resnetlab.cli import data as cli_data
from resnetlab.data import download_cifar, load_cifar
from resnetlab.data.cifar_archive import write_cifar_archive
from resnetlab.data.download import ARCHIVES, DownloadError

FILENAME = "cifar-10-python.tar.gz"


class Server:
    """Serves one archive; ``mode`` picks the behaviour, ``ranges`` records Range headers seen."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.mode = "range"  # range | norange | truncate | corrupt | missing
        self.ranges: list[str | None] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server.ranges.append(self.headers.get("Range"))
                body, start = server.payload, 0
                if server.mode == "missing":
                    self.send_error(404)
                    return
                if server.mode == "corrupt":
                    body = bytes(b ^ 0xFF if i % 97 == 0 else b for i, b in enumerate(body))
                asked = self.headers.get("Range")
                if asked and server.mode in ("range", "truncate"):
                    start = int(asked.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                chunk = body[start:]
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if server.mode == "truncate":
                    chunk = chunk[: len(chunk) // 2]  # promise everything, send half, hang up
                    self.close_connection = True
                self.wfile.write(chunk)
                server.bytes_sent += len(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{FILENAME}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (120, 3, 32, 32), generator=g, dtype=torch.uint8)  # 20 per batch
    labels = torch.arange(120) % 10
    path = write_cifar_archive(tmp_path_factory.mktemp("src") / FILENAME, images, labels)
    payload = path.read_bytes()
    return payload, hashlib.md5(payload).hexdigest(), images


@pytest.fixture
def server(archive: tuple[bytes, str, torch.Tensor]) -> Iterator[Server]:
    s = Server(archive[0])
    yield s
    s.close()


def fetch(root: Path, server: Server, md5: str, **kw: object) -> Path:
    return download_cifar("cifar10", root, url=server.url, md5=md5, timeout=5, **kw)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_official_defaults() -> None:
    a = ARCHIVES[("cifar10", "python")]
    assert a.url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert a.md5 == "c58f30108f718f92721af3b95e74349a"
    assert ARCHIVES[("cifar100", "binary")].md5 == "03b5dce01913d631647c71ecec9e9cb8"


def test_download_verify_extract(tmp_path: Path, server: Server, archive: tuple) -> None:
    payload, md5, images = archive
    folder = fetch(tmp_path, server, md5)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert torch.equal(load_cifar(tmp_path, "train").images, images[:100])
    assert leftovers(tmp_path) == ["cifar-10-batches-py", FILENAME]  # no .part, no temp folder
    assert server.ranges == [None] and server.bytes_sent == len(payload)
    fetch(tmp_path, server, md5)  # already there: no second request
    assert len(server.ranges) == 1


def test_resume_continues_a_partial_file(tmp_path: Path, server: Server, archive: tuple) -> None:
    payload, md5, _ = archive
    (tmp_path / f"{FILENAME}.part").write_bytes(payload[:1000])
    fetch(tmp_path, server, md5)
    assert server.ranges == ["bytes=1000-"] and server.bytes_sent == len(payload) - 1000
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path, server: Server, archive: tuple) -> None:
    payload, md5, _ = archive
    server.mode = "norange"
    (tmp_path / f"{FILENAME}.part").write_bytes(b"x" * 1000)  # appending to this would fail the md5
    fetch(tmp_path, server, md5)
    assert server.ranges == ["bytes=1000-"] and server.bytes_sent == len(payload)


def test_truncated_transfer_is_an_error_then_resumes(tmp_path: Path, server: Server, archive: tuple) -> None:
    payload, md5, images = archive
    server.mode = "truncate"
    with pytest.raises(DownloadError, match="connection closed after .* run again to resume"):
        fetch(tmp_path, server, md5)
    assert leftovers(tmp_path) == [f"{FILENAME}.part"]  # no dataset visible
    assert (tmp_path / f"{FILENAME}.part").stat().st_size == len(payload) // 2
    server.mode = "range"
    fetch(tmp_path, server, md5)
    assert server.ranges[-1] == f"bytes={len(payload) // 2}-"
    assert torch.equal(load_cifar(tmp_path, "test").images, images[100:])


def test_corrupted_archive_fails_checksum_and_leaves_nothing(tmp_path: Path, server: Server, archive: tuple) -> None:
    server.mode = "corrupt"
    with pytest.raises(ValueError, match=f"checksum mismatch.*expected {archive[1]}"):
        fetch(tmp_path, server, archive[1])
    assert leftovers(tmp_path) == []


def test_truncated_archive_with_matching_md5_leaves_no_dataset(tmp_path: Path, archive: tuple) -> None:
    """Extraction is atomic: a broken tar stream never leaves a half-extracted folder."""
    cut = archive[0][: len(archive[0]) * 2 // 3]
    (tmp_path / FILENAME).write_bytes(cut)
    with pytest.raises(ValueError, match="corrupt or truncated archive"):
        download_cifar("cifar10", tmp_path, url="http://127.0.0.1:9/none", md5=hashlib.md5(cut).hexdigest())
    assert leftovers(tmp_path) == [FILENAME]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{FILENAME}"


def test_offline_error_gives_manual_steps(tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(DownloadError) as info:
        download_cifar("cifar10", tmp_path, url=url, timeout=5)
    message = str(info.value)
    assert url in message and "c58f30108f718f92721af3b95e74349a" in message
    assert str(tmp_path / FILENAME) in message and "\n" not in message
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_archive_placed_by_hand_is_used_offline(tmp_path: Path, archive: tuple) -> None:
    payload, md5, _images = archive
    (tmp_path / FILENAME).write_bytes(payload)
    download_cifar("cifar10", tmp_path, url=closed_port_url(), md5=md5, timeout=5)
    assert torch.equal(load_cifar(tmp_path, "train").labels, torch.arange(100) % 10)


def test_http_404_is_a_download_error(tmp_path: Path, server: Server) -> None:
    server.mode = "missing"
    with pytest.raises(DownloadError, match="Not Found"):
        fetch(tmp_path, server, "0" * 32)


def run_cli(argv: list[str]) -> int:
    # Only this module's subcommand: the test must not depend on the other CLI modules.
    parser = argparse.ArgumentParser(prog="resnetlab")
    cli_data.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_download(tmp_path: Path, server: Server, archive: tuple, capsys: pytest.CaptureFixture) -> None:
    assert (
        run_cli(["download", "cifar10", "--root", str(tmp_path), "--url", server.url, "--md5", archive[1], "--quiet"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(tmp_path / "cifar-10-batches-py")
    with pytest.raises(UserError, match="could not download .*put it at") as info:
        run_cli(
            [
                "download",
                "cifar100",
                "--root",
                str(tmp_path / "y"),
                "--url",
                closed_port_url(),
                "--timeout",
                "5",
                "--quiet",
            ]
        )
    assert "03b5dce01913d631647c71ecec9e9cb8" not in str(info.value)  # python format by default
    assert "eb9058c3a382ffc7106e4002c42a8d85" in str(info.value)
