"""Data-parallel helpers for ``torchrun``: gloo on CPU, NCCL on CUDA.

The CLI reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and passes a ``DistInfo``; the
library never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, environ: dict) -> DistInfo:
        """torchrun's variables; a plain process is rank 0 of 1."""
        try:
            return cls(
                rank=int(environ.get("RANK", 0)),
                world_size=int(environ.get("WORLD_SIZE", 1)),
                local_rank=int(environ.get("LOCAL_RANK", 0)),
            )
        except ValueError as error:
            raise ValueError(f"bad torchrun environment: {error}") from None


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group (env:// rendezvous set up by torchrun)."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` (any picklable value) on every rank; ``obj`` itself when not distributed.

    For decisions that must be the same everywhere (e.g. "this run directory is already
    finished"): if only some ranks acted on their own view, the others would wait forever in the
    next collective operation.
    """
    if not info.enabled:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
