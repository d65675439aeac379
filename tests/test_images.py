"""Decoding odd image files and the test-time geometry (resize shorter side, centre crop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from resnetlab.data.images import ImageDecodeError, decode_image, to_rgb
from resnetlab.data.preprocess import Preprocess
from resnetlab.data.transforms import (
    center_crop_box,
    load_image,
    prepare_image,
    prepare_tensor,
    shorter_side_size,
)

CIFAR = Preprocess()  # 32x32, resize "none"
IMAGENET = Preprocess(input_size=224, resize="shorter_side", resize_to=256)


def test_grey_png_becomes_three_equal_channels(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(array, "L").save(tmp_path / "g.png")
    image = decode_image(tmp_path / "g.png")
    assert image.shape == (3, 3, 4) and image.dtype == torch.uint8
    for channel in image:
        assert torch.equal(channel, torch.from_numpy(array))


def test_cmyk_jpeg_decodes_to_its_rgb_colour(tmp_path):
    Image.new("RGB", (16, 16), (100, 150, 200)).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    pixel = decode_image(tmp_path / "c.jpg")[:, 8, 8].tolist()
    assert all(abs(a - b) <= 3 for a, b in zip(pixel, (100, 150, 200))), pixel  # JPEG is lossy


def test_palette_png_with_alpha_composites_on_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "p.png", transparency=0)  # palette index 0 is fully transparent
    decoded = decode_image(tmp_path / "p.png")
    assert decoded[:, 0, 0].tolist() == [255, 255, 255]
    assert decoded[:, 0, 1].tolist() == [200, 100, 50]


def test_16bit_png_scales_full_range_to_8_bits(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    decoded = decode_image(tmp_path / "d.png")[0, 0].tolist()
    # v / 65535 * 255 rounded: 0, 1, 127.5 -> 128, 255
    assert decoded == [0, 1, 128, 255]


def test_32bit_integer_mode_with_16bit_values_is_not_contrast_stretched():
    image = Image.fromarray(np.array([[0, 6553]], dtype=np.int32), "I")
    # 6553 / 65535 * 255 = 24.998 -> 25; stretching to the image's own peak would give 255.
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == [0, 25]


def test_one_pixel_image_fills_the_input(tmp_path):
    Image.new("RGB", (1, 1), (7, 8, 9)).save(tmp_path / "one.png")
    for preprocess in (CIFAR, IMAGENET):
        x = load_image(tmp_path / "one.png", preprocess)
        size = preprocess.input_size
        assert x.shape == (3, size, size)
        assert torch.equal(x, torch.tensor([7, 8, 9], dtype=torch.uint8).view(3, 1, 1).expand(3, size, size))


def test_large_photo_is_resized_then_centre_cropped(tmp_path):
    array = np.zeros((2000, 3000, 3), dtype=np.uint8)
    array[:, :1500] = (255, 0, 0)
    array[:, 1500:] = (0, 0, 255)
    Image.fromarray(array).save(tmp_path / "big.jpg", quality=95)
    x = load_image(tmp_path / "big.jpg", IMAGENET)
    assert x.shape == (3, 224, 224)
    # Shorter side 2000 -> 256, so 3000 -> 384; the crop [80, 304) straddles the colour edge at 192.
    assert x[0, 112, :100].min() > 240 and x[2, 112, :100].max() < 15
    assert x[2, 112, 124:].min() > 240 and x[0, 112, 124:].max() < 15


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="t.jpg"):
        decode_image(tmp_path / "t.jpg")


def test_text_file_named_jpg_and_missing_file(tmp_path):
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(ImageDecodeError, match="not an image file"):
        decode_image(tmp_path / "notes.jpg")
    with pytest.raises(ImageDecodeError, match="No such file"):
        decode_image(tmp_path / "absent.png")


def test_sizes_and_crop_offsets_follow_the_evaluation_rules():
    assert shorter_side_size(500, 375, 256) == (341, 256)  # 341.33 -> 341
    assert shorter_side_size(375, 500, 256) == (256, 341)
    assert shorter_side_size(3, 2, 3) == (5, 3)  # 4.5 rounds half up (torchvision would truncate to 4)
    assert center_crop_box(341, 256, 224) == (58, 16, 282, 240)
    assert center_crop_box(259, 224, 224) == (17, 0, 241, 224)  # 17.5 rounds down


def test_prediction_pixels_equal_the_1crop_evaluation_pixels(tmp_path):
    from resnetlab.data.imagenet_loader import DecodeConfig, load_resized
    from resnetlab.data.images import pil_to_tensor
    from resnetlab.evaluation.views import one_crop_views

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (250, 333, 3), dtype=np.uint8)).save(tmp_path / "p.jpg")
    preprocess = Preprocess(input_size=56, resize="shorter_side", resize_to=64)
    expected = one_crop_views(
        pil_to_tensor(load_resized(str(tmp_path / "p.jpg"), DecodeConfig(64, upscale=True))), 64, 56
    )[0]
    assert torch.equal(load_image(tmp_path / "p.jpg", preprocess), expected)


def test_crop_without_resampling_is_an_exact_window():
    # Landscape 30x20 with resize_to = its shorter side: no resampling, only the centre crop.
    array = np.arange(20 * 30 * 3, dtype=np.int64).reshape(20, 30, 3) % 251
    array = array.astype(np.uint8)
    preprocess = Preprocess(input_size=10, resize="shorter_side", resize_to=20)
    x = prepare_image(Image.fromarray(array), preprocess)
    assert torch.equal(x, torch.from_numpy(array[5:15, 10:20]).permute(2, 0, 1))
    x = prepare_image(Image.fromarray(array.transpose(1, 0, 2).copy()), preprocess)  # portrait
    assert torch.equal(x, torch.from_numpy(array.transpose(1, 0, 2)[10:20, 5:15]).permute(2, 0, 1))


def test_native_size_is_used_as_is_and_other_sizes_keep_aspect():
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(prepare_tensor(image, CIFAR), image)
    # 64 wide x 48 high, left half black, right half white: shorter side 48 -> 32, width 43,
    # crop columns [5, 37) of the 43, so the edge (column 21.3) lands at column 16 of the output.
    array = np.zeros((48, 64, 3), dtype=np.uint8)
    array[:, 32:] = 255
    x = prepare_image(Image.fromarray(array), CIFAR)
    assert x.shape == (3, 32, 32)
    assert x[:, :, :15].max() == 0 and x[:, :, 17:].min() == 255


# --- the fast JPEG decoder (simplejpeg, the [jpeg] extra) against Pillow ----------------------


def _photo(tmp_path, size=(200, 150), quality=85, subsampling=2):
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(-3, 4, (size[1], size[0], 3)), axis=1) % 256  # photo-like gradients
    path = tmp_path / f"p{size[0]}.jpg"
    Image.fromarray(smooth.astype(np.uint8)).save(path, quality=quality, subsampling=subsampling)
    return path


def _pillow_only(monkeypatch):
    from resnetlab.data import images

    monkeypatch.setattr(images, "fast_jpeg_decoder", lambda: None)


@pytest.mark.parametrize("draft_size", [None, 40])
def test_fast_jpeg_decoder_gives_pillows_pixels(tmp_path, monkeypatch, draft_size):
    pytest.importorskip("simplejpeg")
    from resnetlab.data.images import decode_jpeg_fast, open_image

    path = _photo(tmp_path)
    assert decode_jpeg_fast(path.read_bytes(), draft_size=draft_size) is not None  # the fast path is taken
    fast = decode_image(path, draft_size=draft_size)
    fast_pil = np.asarray(open_image(path, draft_size=draft_size))
    _pillow_only(monkeypatch)
    slow = decode_image(path, draft_size=draft_size)
    assert fast.shape == slow.shape and (draft_size is None or fast.shape[1] < 150)
    # Both are libjpeg-turbo with the same DCT and upsampling: equal, not merely close.
    assert torch.equal(fast, slow) and np.array_equal(fast_pil, slow.permute(1, 2, 0).numpy())


def test_fast_jpeg_decoder_matches_pillow_on_the_cifar10_jpeg_copy(monkeypatch):
    pytest.importorskip("simplejpeg")
    from conftest import CIFAR10_JPEG

    if not CIFAR10_JPEG.is_dir():
        pytest.skip("the CIFAR-10 JPEG copy is not beside the repository")
    files = sorted((CIFAR10_JPEG / "test").rglob("*.jpg"))[::40]  # 250 images across the classes
    fast = [decode_image(f) for f in files]
    _pillow_only(monkeypatch)
    assert all(torch.equal(a, decode_image(f)) for a, f in zip(fast, files))


def test_pillow_decodes_what_the_fast_decoder_refuses(tmp_path):
    # CMYK (test above) and damaged files go through Pillow, whose errors name the problem; the
    # truncated-file and non-image tests above run with the fast decoder installed too.
    from resnetlab.data.images import decode_jpeg_fast

    path = tmp_path / "c.jpg"
    Image.new("RGB", (16, 16), (100, 150, 200)).convert("CMYK").save(path)
    assert decode_jpeg_fast(path.read_bytes()) is None
    assert decode_jpeg_fast(b"\xff\xd8\xff" + b"\x00" * 40) is None
    assert decode_jpeg_fast(b"\x89PNG....") is None
