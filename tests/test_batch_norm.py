"""Batch norm over groups of the batch (``bn_batch_size``): the paper's two-GPU statistics in one
process (Sec. 4.2), checked against plain batch norm applied to each group."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_config
from torch import nn

from resnetlab.checkpoints.checkpoint import load_checkpoint, load_model
from resnetlab.engine.batch_norm import GroupedBatchNorm2d, group_batch_norm
from resnetlab.engine.config import TrainConfig
from resnetlab.engine.train import train
from resnetlab.models import build_model


def _bn(channels: int = 5) -> nn.BatchNorm2d:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return bn


def test_each_group_is_normalised_alone_and_the_first_keeps_the_running_statistics() -> None:
    plain = _bn()
    grouped = group_batch_norm(nn.Sequential(copy.deepcopy(plain)), 4)[0]
    assert isinstance(grouped, GroupedBatchNorm2d)
    x = torch.randn(12, 5, 3, 3) * 3 + 1  # three groups of 4, statistics far from (0, 1)
    x_ref, x_grp = x.clone().requires_grad_(), x.clone().requires_grad_()
    # The reference: what three processes of 4 images compute, rank 0's buffers kept.
    ranks = [plain] + [copy.deepcopy(plain) for _ in range(2)]
    expected = torch.cat([bn(part) for bn, part in zip(ranks, x_ref.split(4), strict=True)])
    out = grouped(x_grp)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, _bn()(x))  # and not what one batch norm over all 12 gives
    (out * torch.arange(out.numel()).view_as(out)).sum().backward()
    (expected * torch.arange(out.numel()).view_as(out)).sum().backward()
    torch.testing.assert_close(x_grp.grad, x_ref.grad)
    torch.testing.assert_close(grouped.weight.grad, sum(bn.weight.grad for bn in ranks))
    torch.testing.assert_close(grouped.running_mean, plain.running_mean)
    torch.testing.assert_close(grouped.running_var, plain.running_var)
    assert grouped.num_batches_tracked.item() == 1


def test_evaluation_and_small_batches_are_plain_batch_norm() -> None:
    plain = _bn()
    grouped = group_batch_norm(nn.Sequential(copy.deepcopy(plain)), 8)[0]
    x = torch.randn(8, 5, 2, 2)
    torch.testing.assert_close(grouped(x), plain(x))  # one group: the whole batch
    grouped.eval(), plain.eval()
    x = torch.randn(32, 5, 2, 2)
    torch.testing.assert_close(grouped(x), plain(x))  # running statistics, no groups


def test_the_converted_network_shares_its_tensors_and_saves_as_a_plain_one() -> None:
    model = build_model("resnet20")
    tensors = {name: t.data_ptr() for name, t in model.state_dict().items()}
    parameters = [id(p) for p in model.parameters()]
    converted = group_batch_norm(model, 64)
    assert sum(isinstance(m, GroupedBatchNorm2d) for m in converted.modules()) == 19  # every BN of ResNet-20
    assert {name: t.data_ptr() for name, t in converted.state_dict().items()} == tensors
    assert [id(p) for p in converted.parameters()] == parameters  # an optimiser built before still steps them
    build_model("resnet20").load_state_dict(converted.state_dict())  # same keys, strict


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bn_batch_size": 1}, "bn_batch_size"),
        ({"bn_batch_size": 48}, "divisor"),
        ({"bn_batch_size": -64}, "bn_batch_size"),
        ({"bn_batch_size": True}, "bn_batch_size"),
        ({"bn_batch_size": 64, "sync_bn": True}, "sync_bn and bn_batch_size"),
    ],
)
def test_bad_values_name_the_key(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_a_grouped_run_resumes_bitwise_and_its_weights_load_into_a_plain_model(tmp_path, tiny_data) -> None:
    config = tiny_config(bn_batch_size=16)
    straight = train(config, tmp_path / "straight", data=tiny_data, log=lambda line: None)
    calls = iter(range(100))
    train(config, tmp_path / "resumed", data=tiny_data, should_stop=lambda: next(calls) == 6, log=lambda line: None)
    finished = train(config, tmp_path / "resumed", data=tiny_data, resume=True, log=lambda line: None)
    a = load_checkpoint(tmp_path / "straight/checkpoints/last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert finished.summary["test_top1_error"] == straight.summary["test_top1_error"]
    train(tiny_config(), tmp_path / "plain", data=tiny_data, log=lambda line: None)
    plain = load_checkpoint(tmp_path / "plain/checkpoints/last.pt")["model"]
    assert not torch.equal(a["bn1.weight"], plain["bn1.weight"])  # the grouping changed the training
    loaded = load_model(tmp_path / "straight")  # the checkpoint rebuilds an ordinary network
    assert not any(isinstance(m, GroupedBatchNorm2d) for m in loaded.model.modules())
