"""``TrainState`` (engine/state.py) and the named steps of the loop (engine/steps.py) on their own."""

from __future__ import annotations

import pytest
import torch

from resnetlab.data.preprocess import Preprocess
from resnetlab.engine.config import TrainConfig
from resnetlab.engine.state import TrainState, check_resumable

CPU = torch.device("cpu")


def tiny(**changes) -> TrainConfig:
    return TrainConfig(
        model="cifar_resnet",
        model_options={"depth": 8},
        iterations=12,
        batch_size=4,
        milestones=(6, 9),
        precision="fp32",
        channels_last=False,
    ).replace(**changes)


def _step(state: TrainState) -> None:
    """A few SGD steps on random data, as the loop would take them (momentum buffers filled)."""
    for _ in range(3):
        x = torch.randn(4, 3, 32, 32)
        loss = state.model(x).logsumexp(1).mean()
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        state.iteration += 1
    state.window += torch.tensor([12.0, 7.0, 20.5], dtype=torch.float64)
    state.warm_window += torch.tensor([12.0, 7.0], dtype=torch.float64)
    state.best = {"val_error": 42.0, "iteration": 3}
    state.schedule.observe_val_error(42.0, 3)


def test_build_draws_the_weights_from_the_seed_alone() -> None:
    torch.manual_seed(123)  # whatever the global RNG held before
    a = TrainState.build(tiny(), 10, CPU, "fp32")
    torch.rand(100)
    b = TrainState.build(tiny(), 10, CPU, "fp32")
    c = TrainState.build(tiny(seed=1), 10, CPU, "fp32")
    sa, sb, sc = (s.model.state_dict() for s in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.options == {"depth": 8, "num_classes": 10} and a.iteration == 0 and a.best["iteration"] is None
    assert not a.scaler.is_enabled()  # loss scaling is for fp16 only


def test_payload_then_restore_is_the_same_state() -> None:
    state = TrainState.build(tiny(), 10, CPU, "fp32")
    _step(state)
    state.at_chance_since = 2  # the collapse check's count (engine/failures.py) travels too
    preprocess = Preprocess(input_size=32, resize="none", resize_to=32, mean_image=torch.zeros(3, 32, 32))
    payload = state.payload([str(i) for i in range(10)], preprocess, wall_seconds=5.0)
    rng_after_save = torch.get_rng_state()
    torch.rand(10)  # the global RNG moves on; restore must bring it back

    other = TrainState.build(tiny(), 10, CPU, "fp32")
    other.restore(payload)
    assert other.iteration == 3 and other.best == {"val_error": 42.0, "iteration": 3} and other.wall_before == 5.0
    assert torch.equal(torch.get_rng_state(), rng_after_save)
    assert torch.equal(other.window, state.window) and torch.equal(other.warm_window, state.warm_window)
    assert other.schedule.state_dict() == state.schedule.state_dict()
    assert other.at_chance_since == 2
    m1, m2 = state.model.state_dict(), other.model.state_dict()
    assert all(torch.equal(m1[k], m2[k]) for k in m1)
    o1, o2 = state.optimizer.state_dict()["state"], other.optimizer.state_dict()["state"]
    assert o1.keys() == o2.keys() and all(torch.equal(o1[i]["momentum_buffer"], o2[i]["momentum_buffer"]) for i in o1)
    # The keys a run directory's last.pt holds (the format is a contract: keys are only ever added,
    # and a checkpoint written before a key existed still restores, see below).
    assert {
        "arch",
        "model",
        "classes",
        "preprocess",
        "iteration",
        "config",
        "optimizer",
        "schedule",
        "scaler",
        "rng",
        "best",
        "windows",
        "wall_seconds",
        "at_chance_since",
    } == set(payload)
    del payload["at_chance_since"]  # as written before the collapse check existed
    older = TrainState.build(tiny(), 10, CPU, "fp32")
    older.restore(payload)
    assert older.at_chance_since is None and older.iteration == 3


def test_a_changed_recipe_is_refused_but_cadence_may_change() -> None:
    saved = tiny().to_dict()
    check_resumable(saved, tiny(log_every=1, eval_every=2, checkpoint_every=3, iterations=24))
    with pytest.raises(ValueError, match="different lr"):
        check_resumable(saved, tiny(lr=0.2))
