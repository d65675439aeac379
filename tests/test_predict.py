"""``predict``: top-k over files of any kind, per-file errors, batching, the CLI and its exit status."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_trained_cifar_resnet
from PIL import Image

from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
from resnetlab.cli import main
from resnetlab.inference import load_any, predict
from resnetlab.inference.predict import expand_paths

CLASSES = [f"class{i}" for i in range(10)]


def trained_run(root) -> tuple:
    """A run directory whose best checkpoint is a depth-8 CIFAR ResNet after 3 SGD steps."""
    model, preprocess, _ = tiny_trained_cifar_resnet(0, (0.25, 0.25, 0.25))
    model.eval()
    save_checkpoint(
        root / "checkpoints" / "best.pt", model_payload(model, "cifar_resnet", {"depth": 8}, CLASSES, preprocess, 3)
    )
    return model, preprocess


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    model, preprocess = trained_run(root)
    return root, model, preprocess


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Good images of several kinds and sizes, and bad files, in one directory."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / "a_rgb.png")
    Image.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8), "L").save(d / "b_grey.png")
    Image.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)).convert("CMYK").save(d / "c_cmyk.jpg")
    Image.new("RGB", (1, 1), (1, 2, 3)).save(d / "d_one.bmp")
    (d / "e_text.jpg").write_text("hello")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "f_trunc.jpg")
    data = (d / "f_trunc.jpg").read_bytes()
    (d / "f_trunc.jpg").write_bytes(data[:200])
    (d / "g_readme.txt").write_text("skipped: not an image suffix")
    return d


def test_directory_mixing_good_and_bad_files(run, folder):
    root, _model, _preprocess = run
    loaded = load_any(root)
    results = predict(loaded, [folder], topk=3, batch_size=4)
    names = [r.path.rsplit("/", 1)[-1] for r in results]
    assert names == ["a_rgb.png", "b_grey.png", "c_cmyk.jpg", "d_one.bmp", "e_text.jpg", "f_trunc.jpg"]
    assert [r.ok for r in results] == [True, True, True, True, False, False]
    assert results[4].error == "not an image file" and results[4].top == ()
    assert results[5].error  # PIL's reason for the truncated file
    for r in results[:4]:
        probs = [s.probability for s in r.top]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert all(s.name == CLASSES[s.index] for s in r.top)


def test_probabilities_match_a_hand_computed_forward_pass(run, folder):
    root, model, preprocess = run
    [result] = predict(load_any(root), [folder / "a_rgb.png"], topk=10)
    pixels = torch.from_numpy(np.array(Image.open(folder / "a_rgb.png"))).permute(2, 0, 1).float()
    x = ((pixels / 255 - preprocess.mean_image) / 0.25)[None]
    with torch.no_grad():
        expected = torch.softmax(model(x), 1)[0]
    got = torch.zeros(10)
    for score in result.top:
        got[score.index] = score.probability
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_batch_size_does_not_change_results(run, folder):
    loaded = load_any(run[0])
    one = predict(loaded, [folder], topk=5, batch_size=1)
    many = predict(loaded, [folder], topk=5, batch_size=64)
    assert [r.error for r in one] == [r.error for r in many]
    for a, b in zip(one, many):
        assert [s.index for s in a.top] == [s.index for s in b.top]
        assert np.allclose([s.probability for s in a.top], [s.probability for s in b.top], atol=1e-6)


def test_topk_is_capped_and_validated(run, folder):
    loaded = load_any(run[0])
    [result] = predict(loaded, [folder / "a_rgb.png"], topk=50)
    assert len(result.top) == 10 and abs(sum(s.probability for s in result.top) - 1) < 1e-5
    with pytest.raises(ValueError, match="topk"):
        predict(loaded, [folder / "a_rgb.png"], topk=0)


def test_expand_paths_keeps_named_files_and_skips_hidden(folder, tmp_path):
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "sub" / "x.png")
    assert expand_paths([tmp_path]) == [tmp_path / "sub" / "x.png"]
    assert expand_paths([folder / "g_readme.txt"]) == [folder / "g_readme.txt"]


def test_cli_json_reports_per_file_errors_and_exit_status(run, folder, capsys):
    root = run[0]
    assert main(["predict", str(root), str(folder), "--json", "--topk", "2", "--batch-size", "3"]) == 1
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6 and [r["error"] is None for r in rows] == [True] * 4 + [False] * 2
    assert all(len(r["top"]) == 2 for r in rows[:4]) and "2 of 6 file(s)" in err
    # Only good files: exit status 0, text output "path<TAB>name prob  name prob".
    assert main(["predict", str(root / "checkpoints" / "best.pt"), str(folder / "a_rgb.png"), "--topk", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(folder / "a_rgb.png") + "\tclass")


def test_cli_missing_file_is_an_entry_and_missing_checkpoint_an_error(run, tmp_path, capsys):
    assert main(["predict", str(run[0]), str(tmp_path / "nope.png")]) == 1
    assert "No such file" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "nothing"), str(tmp_path)]) == 1
    assert "no checkpoint at" in capsys.readouterr().err


def test_bare_state_dict_points_to_weights_import(run, tmp_path):
    torch.save(run[1].state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="resnetlab weights import"):
        load_any(tmp_path / "bare.pt")
