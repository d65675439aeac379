"""Precision: what the reports say of bf16 training is what torch.autocast does to a ResNet; "auto"
follows the CPU's native bf16; a run resumed in another precision records where it changed."""

import json
from itertools import count

import pytest
import torch
import torch.nn.functional as F
from test_train import tiny_config

from resnetlab.data import load_dataset
from resnetlab.engine import precision as precision_module
from resnetlab.engine.precision import (
    arithmetic,
    autocast_for,
    cpu_flags,
    describe_segments,
    resolve_precision,
    wants_compile,
)
from resnetlab.engine.train import train
from resnetlab.models import build_model

CPU = torch.device("cpu")

# Shortened /proc/cpuinfo texts: a Zen 4 host, and an Intel host whose hypervisor hides BF16/AMX.
ZEN4 = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
MASKED = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_compile_auto_is_fp32_or_amx_bf16_on_the_cpu_only():
    """Where compiling was measured to pay (benchmarks/RESULTS.md): an fp32 step on the CPU, a bf16
    step on a CPU with AMX."""
    cuda = torch.device("cuda")
    assert wants_compile("auto", CPU, "fp32", amx=False) and not wants_compile("auto", CPU, "bf16", amx=False)
    # bf16 compiles where the CPU has AMX (1.18-1.21x in the campaign's shape), not on AVX512-BF16 alone.
    assert wants_compile("auto", CPU, "bf16", amx=True) and wants_compile("auto", CPU, "fp32", amx=True)
    assert not wants_compile("auto", cuda, "fp32") and not wants_compile("auto", cuda, "bf16")
    assert wants_compile(True, CPU, "bf16") and not wants_compile(False, CPU, "fp32")


def test_cpu_flags_read_x86_and_arm_cpuinfo():
    assert "avx512_bf16" in cpu_flags(ZEN4) and "avx512_bf16" not in cpu_flags(MASKED)
    assert "bf16" in cpu_flags(GRAVITON)


@pytest.mark.parametrize("text, expected", [(ZEN4, "bf16"), (MASKED, "fp32"), (GRAVITON, "bf16")])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, tmp_path, text, expected):
    # oneDNN accepts bf16 on any AVX512 CPU and emulates it there, 3x slower than fp32: "auto" must
    # not take its word for it.
    fake = tmp_path / "cpuinfo"
    fake.write_text(text)
    real_path = precision_module.Path
    monkeypatch.setattr(precision_module, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    precision_module.cpu_has_native_bf16.cache_clear()
    try:
        assert resolve_precision("auto", CPU) == expected
    finally:
        precision_module.cpu_has_native_bf16.cache_clear()
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", CPU)


def test_describe_segments_names_each_precision_with_its_iterations():
    same = [{"from_iteration": 0, "precision": "bf16"}, {"from_iteration": 500, "precision": "bf16"}]
    assert describe_segments(same, "precision", 1000) == "bf16"
    mixed = same + [{"from_iteration": 12073, "precision": "fp32"}, {"from_iteration": 20000, "precision": "fp32"}]
    assert describe_segments(mixed, "precision", 64000) == "bf16 (iterations 0-12,073), fp32 (12,073-64,000)"
    # A compiled training step is named with its precision; segments from before it was recorded
    # (no "compile" key) read as eager.
    compiled = [
        {"from_iteration": 0, "precision": "fp32"},
        {"from_iteration": 800, "precision": "fp32", "compile": True},
    ]
    assert describe_segments(compiled, "precision", 1000, arithmetic) == (
        "fp32 (iterations 0-800), fp32 + torch.compile (800-1,000)"
    )
    assert describe_segments(same, "precision", 1000, arithmetic) == "bf16"


def test_a_run_resumed_in_another_precision_records_where_it_changed(tmp_path, monkeypatch):
    data = load_dataset("synthetic:320", "train"), load_dataset("synthetic", "test").subset(torch.arange(100))
    config = tiny_config(iterations=8, milestones=(4, 6), val_size=0, eval_every=100, checkpoint_every=3)
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    calls = count()
    train(config, tmp_path / "run", data=data, log=lambda line: None, should_stop=lambda: next(calls) == 5)
    first = json.loads((tmp_path / "run/meta.json").read_text())
    assert [(s["from_iteration"], s["precision"]) for s in first["segments"]] == [(0, "bf16")]
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)  # "another host"
    result = train(config, tmp_path / "run", data=data, log=lambda line: None, resume=True)
    meta = json.loads((tmp_path / "run/meta.json").read_text())
    stopped = meta["resumed_from"]
    assert stopped > 0
    assert [(s["from_iteration"], s["precision"]) for s in meta["segments"]] == [(0, "bf16"), (stopped, "fp32")]
    assert result.summary["precision"] == f"bf16 (iterations 0-{stopped:,}), fp32 ({stopped:,}-8)"


def test_bf16_autocast_covers_every_layer_but_keeps_weights_and_loss_fp32():
    model = build_model("resnet20").train()
    outputs: dict[str, set] = {}
    for module in model.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o: outputs.setdefault(type(m).__name__, set()).add(o.dtype))
    block = model.layer1[0]
    block.register_forward_hook(lambda m, i, o: outputs.setdefault("block (after the addition)", set()).add(o.dtype))
    with autocast_for(torch.device("cpu"), "bf16"):
        logits = model(torch.randn(2, 3, 32, 32))
        loss = F.cross_entropy(logits, torch.tensor([0, 1]))
    for name in ("Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Linear", "block (after the addition)"):
        assert outputs[name] == {torch.bfloat16}, name
    assert loss.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.bn1.running_mean.dtype == torch.float32
