"""Export round trips: ONNX (checked with onnxruntime), TorchScript, safetensors; failing checks fail."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_trained_cifar_resnet

from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.inference import export_verified, load_any
from resnetlab.inference.verification import ExportVerificationError, Tolerance, compare_logits

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

CLASSES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A depth-8 CIFAR ResNet after 3 SGD steps, with a per-pixel mean and a std."""
    model, preprocess, images = tiny_trained_cifar_resnet(1, (0.2, 0.25, 0.3))
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model_payload(model, "cifar_resnet", {"depth": 8}, CLASSES, preprocess, 3))
    return path, images[:8]


def _inputs(size: int, batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_compare_logits_against_hand_numbers():
    tol = Tolerance(1e-4)  # limit = 1e-4 * max(1, 10) = 1e-3
    ref = torch.tensor([[10.0, 0.0]])
    assert compare_logits("a", ref, torch.tensor([[10.0005, 0.0]]), tol).ok
    bad = compare_logits("b", ref, torch.tensor([[10.002, 0.0]]), tol)
    assert not bad.ok and abs(bad.max_abs_diff - 0.002) < 1e-5 and abs(bad.limit - 1e-3) < 1e-9
    # A numerical tie (gap 5e-5 < limit 1e-4) may flip top-1; a real gap may not.
    assert compare_logits("tie", torch.tensor([[1.0, 1.00005]]), torch.tensor([[1.00005, 1.0]]), tol).ok
    # Differences within the limit (0.3 <= 0.4) but a gap above it (0.5): the top-1 flip fails.
    flip = compare_logits("flip", torch.tensor([[0.0, 0.5]]), torch.tensor([[0.3, 0.2]]), Tolerance(0.4))
    assert flip.max_abs_diff <= flip.limit and flip.top1_mismatches == 1 and not flip.ok


def test_onnx_dynamic_batch_and_size_agree_with_pytorch(ckpt, tmp_path):
    path, real = ckpt
    loaded = load_any(path)
    out = tmp_path / "m.onnx"
    report = export_verified(loaded, "onnx", out, exporter="torchscript", real_images=real)
    assert report.ok and [c.name for c in report.checks] == ["random 1x3x32x32", "random 3x3x48x48", "real 8x3x32x32"]
    graph = onnx.load(str(out)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for size, batch in ((32, 5), (48, 2), (40, 1)):  # 40: a size the verification did not use
        x = _inputs(size, batch, size)
        with torch.no_grad():
            ref = loaded.model(x)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        assert (got - ref).abs().max() <= 1e-4 * max(1.0, float(ref.abs().max()))
        assert torch.equal(got.argmax(1), ref.argmax(1))


def test_onnx_with_preprocess_takes_uint8_pixels(ckpt, tmp_path):
    path, real = ckpt
    loaded = load_any(path)
    out = tmp_path / "p.onnx"
    export_verified(loaded, "onnx", out, exporter="torchscript", include_preprocess=True)
    assert onnx.load(str(out)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": real.numpy()})[0])
    torch.testing.assert_close(got, loaded.predict_logits(real), rtol=0, atol=1e-4)


def test_onnx_dynamo_exporter(ckpt, tmp_path):
    pytest.importorskip("onnxscript")
    loaded = load_any(ckpt[0])
    report = export_verified(loaded, "onnx", tmp_path / "d.onnx", exporter="dynamo", real_images=ckpt[1])
    assert report.ok and len(report.checks) == 3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_round_trip(ckpt, tmp_path):
    loaded = load_any(ckpt[0])
    out = tmp_path / "m.ts"
    assert export_verified(loaded, "torchscript", out).ok
    module = torch.jit.load(str(out))
    x = _inputs(36, 4, 7)
    with torch.no_grad():
        torch.testing.assert_close(module(x), loaded.model(x), rtol=0, atol=1e-5)


def test_safetensors_round_trip_keeps_weights_and_metadata(ckpt, tmp_path):
    from safetensors.torch import load_file

    loaded = load_any(ckpt[0])
    out = tmp_path / "m.safetensors"
    export_verified(loaded, "safetensors", out)
    again = load_any(out)
    assert (again.name, again.options, again.classes, again.iteration) == (
        "cifar_resnet",
        {"depth": 8},
        tuple(CLASSES),
        3,
    )
    assert torch.equal(again.preprocess.mean_image, loaded.preprocess.mean_image)
    assert again.preprocess.std == loaded.preprocess.std
    tensors = load_file(str(out))  # a plain state dict: nothing but the model's own keys
    assert set(tensors) == set(loaded.model.state_dict())
    assert all(torch.equal(tensors[k], v) for k, v in loaded.model.state_dict().items())


def test_disagreeing_export_fails_and_removes_file(ckpt, tmp_path, monkeypatch, capsys):
    import resnetlab.inference.verification as verification
    from resnetlab.inference.export import export_onnx

    def export_wrong(loaded, path, **kw):  # a graph of the same net with one weight perturbed
        wrong = load_any(ckpt[0])
        with torch.no_grad():
            wrong.model.fc.bias[0] += 5.0
        return export_onnx(wrong, path, **kw)

    monkeypatch.setattr(verification, "export_onnx", export_wrong)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportVerificationError, match="FAILED"):
        export_verified(load_any(ckpt[0]), "onnx", out, exporter="torchscript")
    assert not out.exists()
    code = main(["export", str(ckpt[0]), "--format", "onnx", "--out", str(out), "--exporter", "torchscript"])
    assert code != 0 and "disagrees" in capsys.readouterr().err


def test_cli_export_end_to_end(ckpt, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", str(ckpt[0]), "--format", "onnx", "--out", str(out), "--exporter", "torchscript"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "FAILED" not in text and text.count("-> ok") == 3
    assert "real 8x3x32x32" in text  # the built-in dataset's test images, by default
    assert main(["export", str(ckpt[0]), "--format", "safetensors", "--out", str(tmp_path / "x.bin")]) == 1
    assert "must end in .safetensors" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cli_export_device_cpu_and_verification_progress(ckpt, tmp_path, capsys):
    out = tmp_path / "cpu.ts"
    argv = ["export", str(ckpt[0]), "--format", "torchscript", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0 and out.is_file()
    text = capsys.readouterr().out
    # Not a terminal here: one plain progress line per verification input, before the report.
    assert "verify 1/3 random 1x3x32x32 ok eta" in text and "verify 3/3 real 8x3x32x32 ok eta" in text
    assert f"wrote {out}" in text and text.count("-> ok") == 3
    assert main(["--quiet"] + argv + ["--overwrite"]) == 0
    text = capsys.readouterr().out
    assert "verify " not in text.replace("verified ", "") and text.count("-> ok") == 3  # results stay


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_export_device_cuda_without_cuda_fails_in_one_line(ckpt, tmp_path, capsys):
    out = tmp_path / "gpu.onnx"
    code = main(["export", str(ckpt[0]), "--format", "onnx", "--out", str(out), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == [
        "resnetlab export: error: --device cuda: no CUDA device is available here; use --device cpu"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_verified_device_is_checked_first_and_progress_is_off_by_default(ckpt, tmp_path, capsys):
    loaded = load_any(ckpt[0])
    report = export_verified(loaded, "torchscript", tmp_path / "m.ts", device="cpu")
    assert report.ok and capsys.readouterr() == ("", "")  # library calls are silent unless progress=True
    with pytest.raises(ValueError, match="format must be one of onnx, torchscript, safetensors"):
        export_verified(loaded, "tflite", tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="not a torch device"):
        export_verified(loaded, "torchscript", tmp_path / "x.ts", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available"):
            export_verified(loaded, "torchscript", tmp_path / "x.ts", device="cuda")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ts"]
    assert next(loaded.model.parameters()).device.type == "cpu"  # the caller's model never moves


def test_cuda_reference_runs_in_full_float32_and_restores_the_settings():
    """TF32 convolutions (the CUDA default on Ampere and later) would alone fail a 1e-4 check. The
    settings can be read and set without a GPU, so this runs everywhere."""
    from resnetlab.inference.reference import full_float32

    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is None or not hasattr(conv, "fp32_precision"):
        pytest.skip("torch < 2.9: legacy allow_tf32 flags only")
    before = conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    with full_float32(torch.device("cuda")):
        assert (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == ("ieee", "ieee")
    assert (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
    with full_float32(torch.device("cpu")):
        assert (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) == before
