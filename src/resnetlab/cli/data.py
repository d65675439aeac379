"""``resnetlab download``: fetch, verify and extract an official CIFAR release."""

from __future__ import annotations

import argparse

from . import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("download", help="download, md5-check and extract CIFAR-10/100 (resumable)")
    p.add_argument("name", choices=("cifar10", "cifar100"))
    p.add_argument("--root", default="data", help="folder to put the archive and dataset in (default: data)")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("python", "binary"),
        default="python",
        help="which official release (default: python)",
    )
    p.add_argument("--url", help="fetch from this URL instead of the official host")
    p.add_argument("--md5", help="expected md5 of the archive at --url (default: the official one)")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default: 60)")
    # The global --quiet; declared here too so that this module's parser stands alone. SUPPRESS:
    # absent here, the top-level value stands.
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress on stderr (as the global --quiet)",
    )
    p.set_defaults(func=run_download)


class _DownloadProgress:
    """The download's bytes as a tqdm bar on a terminal, a plain line every 10 s otherwise."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, received: int, total: int | None) -> None:
        from ..progress import Progress

        if self.bar is None:
            self.bar = Progress(total=total or 0, desc="download", unit="B", unit_scale=True, plain_every=10.0)
        self.bar.update(received, "" if self.bar.tty else f"{received / 1e6:.1f} MB")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import DownloadError, download_cifar

    progress = None if getattr(args, "quiet", False) else _DownloadProgress()
    try:
        folder = download_cifar(
            args.name, args.root, fmt=args.fmt, url=args.url, md5=args.md5, timeout=args.timeout, progress=progress
        )
    except DownloadError as error:
        raise UserError(str(error)) from None
    finally:
        if progress is not None:
            progress.close()
    print(folder)
    return 0
