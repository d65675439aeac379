#!/usr/bin/env bash
# The GPU benchmark (issue 13) on a bare machine: benchmarks/gpu.sh /path/to/cifar10-jpeg [OUT_DIR]
#
# Installs the project with its own command (`make venv`) when .venv is missing, then runs
# benchmarks/gpu.py (about 10 minutes on one modern NVIDIA GPU; results in OUT_DIR, default
# runs/gpu-bench/). The Makefile pins the torch build of the CPU host this project is developed
# on (TORCH_PIN=torch==2.13.0); which build pip picks for that pin depends on the machine's index
# configuration, so on a CUDA machine name a CUDA build explicitly, e.g.
#   TORCH_PIN="torch --index-url https://download.pytorch.org/whl/cu128" benchmarks/gpu.sh DIR
# Exit codes: 2 bad arguments, 3 no NVIDIA/CUDA GPU, 1 a benchmark phase failed.
set -euo pipefail

usage() { echo "usage: benchmarks/gpu.sh /path/to/cifar10-jpeg [OUT_DIR] [gpu.py options, e.g. --compile no]" >&2; }
if [ $# -eq 1 ] && { [ "$1" = "-h" ] || [ "$1" = "--help" ]; }; then usage; exit 0; fi
if [ $# -lt 1 ]; then usage; exit 2; fi
if [ ! -d "$1" ]; then echo "error: $1 is not a directory (pass the CIFAR-10 JPEG folder)" >&2; exit 2; fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Paths stay relative to the caller's directory: nothing below changes directory.
if [ ! -d "$ROOT/.venv" ]; then
    # Fail before minutes of installing when the machine plainly has no NVIDIA GPU; gpu.py makes the
    # definitive check (torch.cuda.is_available()) once torch is installed.
    if ! command -v nvidia-smi >/dev/null 2>&1 && [ ! -e /dev/nvidia0 ]; then
        echo "error: no NVIDIA GPU found (no nvidia-smi, no /dev/nvidia0); this benchmark needs one CUDA GPU" >&2
        exit 3
    fi
    echo "installing the project into $ROOT/.venv (make venv${TORCH_PIN:+, TORCH_PIN=$TORCH_PIN})" >&2
    if [ -n "${TORCH_PIN:-}" ]; then
        make -C "$ROOT" venv "TORCH_PIN=$TORCH_PIN"
    else
        make -C "$ROOT" venv
    fi
fi
exec "$ROOT/.venv/bin/python" "$ROOT/benchmarks/gpu.py" "$@"
