"""Hugging Face Hub conventions, offline: save_pretrained / from_pretrained on a local folder."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("huggingface_hub")

from resnetlab.checkpoints.interop import save_weights
from resnetlab.checkpoints.loading import preprocess_to_json
from resnetlab.checkpoints.weights import imagenet_preprocess
from resnetlab.inference import load_any
from resnetlab.models import build_model
from resnetlab.models.hub import HubModel


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_round_trip_on_a_local_folder(tmp_path):
    torch.manual_seed(0)
    preprocess = json.loads(preprocess_to_json(imagenet_preprocess()))
    hub = HubModel(
        "resnet50", options={"num_classes": 3, "stride_on": "3x3"}, classes=["a", "b", "c"], preprocess=preprocess
    ).eval()
    hub.save_pretrained(tmp_path / "hub")
    config = json.loads((tmp_path / "hub" / "config.json").read_text())
    assert config["arch"] == "resnet50" and config["options"] == {"num_classes": 3, "stride_on": "3x3"}
    assert config["classes"] == ["a", "b", "c"] and config["preprocess"]["resize_to"] == 256
    again = HubModel.from_pretrained(tmp_path / "hub")
    assert not again.training and again.net.layer2[0].conv2.stride == (2, 2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), hub(x), rtol=0, atol=0)
    # The weights file is the torchvision layout (no "net." prefix) with resnetlab metadata:
    # load_any and eval/predict read the folder as it is.
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "hub" / "model.safetensors"))) == set(build_model("resnet50").state_dict())
    loaded = load_any(tmp_path / "hub")
    assert loaded.classes == ("a", "b", "c") and loaded.options["stride_on"] == "3x3"
    assert again.to_loaded().preprocess.resize_to == 256


def test_default_layout_written_out_and_from_loaded(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    from resnetlab.checkpoints.checkpoint import model_payload, save_checkpoint
    from resnetlab.data.preprocess import Preprocess

    save_checkpoint(
        tmp_path / "c.pt",
        model_payload(
            model,
            "resnet20",
            {},
            [str(i) for i in range(10)],
            Preprocess(input_size=32, mean_image=torch.rand(3, 32, 32)),
        ),
    )
    loaded = load_any(tmp_path / "c.pt")
    HubModel.from_loaded(loaded).save_pretrained(tmp_path / "hub")
    again = HubModel.from_pretrained(str(tmp_path / "hub")).to_loaded()
    assert torch.equal(again.preprocess.mean_image, loaded.preprocess.mean_image)  # bit for bit
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(again.predict_logits(x), loaded.predict_logits(x), rtol=0, atol=0)
    assert HubModel("resnet101")._hub_mixin_config["options"] == {"stride_on": "1x1"}  # v1, said explicitly


def test_a_file_that_does_not_fit_fails_strictly(tmp_path):
    HubModel("resnet18", options={"num_classes": 4}).save_pretrained(tmp_path / "hub")
    save_weights(build_model("resnet18", num_classes=5), tmp_path / "hub" / "model.safetensors")
    with pytest.raises(ValueError, match="does not fit the model"):
        HubModel.from_pretrained(tmp_path / "hub")
