"""Pixel-level baselines (downsample, blur, blacken on person boxes) applied before the encoder, recorded in the
store's identity."""

import numpy as np
import pytest
import torch

from data_manifests.errors import FeatstoreError
from data_manifests.schema import Manifest
from featstore.extract import ExtractConfig, extract
from featstore.pixel_transform_config import PixelTransformConfig
from featstore.pixel_transforms import PixelTransform, read_boxes
from featstore.sampling import SamplingConfig
from featstore.store import Store
from tests.conftest import one_torch_thread, run_in_process

BOX_HEADER = "video_id,frame,x1,y1,x2,y2\n"


def frames_of(image: np.ndarray, n: int = 1) -> torch.Tensor:
    return torch.as_tensor(np.repeat(image[None], n, axis=0))


def write_boxes(path, rows: list[str]) -> str:
    path.write_text(BOX_HEADER + "".join(row + "\n" for row in rows))
    return str(path)


def test_downsample_2x_averages_each_2x2_block_away():
    # a one-pixel checkerboard has no detail left at half resolution: every pixel becomes the mean, 127.5
    checker = ((np.indices((8, 12)).sum(0) % 2) * 255).astype(np.uint8)
    image = np.repeat(checker[:, :, None], 3, axis=2)
    out = PixelTransform(PixelTransformConfig("downsample-2x"), set())(frames_of(image), "v", np.array([0]))
    assert out.shape == (1, 8, 12, 3) and out.dtype == torch.uint8
    assert set(out.unique().tolist()) == {128}  # 127.5 rounded half to even -> 128


def test_downsample_4x_keeps_a_smooth_image_and_its_size():
    ramp = np.repeat(np.repeat(np.linspace(0, 240, 16, dtype=np.float64)[None, :, None], 16, 0), 3, 2)
    out = PixelTransform(PixelTransformConfig("downsample-4x"), set())(frames_of(ramp.astype(np.uint8)), "v",
                                                                       np.array([0]))
    assert out.shape == (1, 16, 16, 3)
    inner = out[0, :, 2:-2, 0].float().numpy()  # away from the edges, bilinear restores a linear ramp
    assert np.abs(inner - ramp[:, 2:-2, 0]).max() <= 1.0


def test_whole_frame_blur_spreads_a_point_as_a_gaussian():
    image = np.zeros((41, 41, 3), dtype=np.uint8)
    image[18:23, 18:23] = 255
    sigma = 2.0  # px: blur_sigma is a fraction of the shorter side
    out = PixelTransform(PixelTransformConfig("blur", blur_sigma=sigma / 41), set())(
        frames_of(image), "v", np.array([0]))[0, :, :, 0].numpy()
    # independent reference: the 2-D Gaussian (radius 3 sigma, normalized) convolved directly, away from the edges
    offsets = np.arange(-6, 7)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2))
    kernel /= kernel.sum()
    reference = np.zeros((41, 41))
    for y in range(8, 33):
        for x in range(8, 33):
            reference[y, x] = (image[y - 6:y + 7, x - 6:x + 7, 0] * kernel).sum()
    assert np.abs(out[8:33, 8:33].astype(float) - reference[8:33, 8:33]).max() <= 0.5 + 1e-3
    assert out[20, 20] < 255 and out[0, 0] == 0


def test_blacken_uses_the_nearest_annotated_frames_boxes(tmp_path):
    boxes = write_boxes(tmp_path / "boxes.csv", ["v1,0,0.0,0.0,0.5,0.5", "v1,10,0.5,0.5,1.0,1.0"])
    transform = PixelTransform(PixelTransformConfig("blacken", boxes=boxes), {"v1", "v2"})
    image = np.full((4, 4, 3), 200, dtype=np.uint8)
    out = transform(frames_of(image, 3), "v1", np.array([4, 5, 6])).numpy()
    # frames 4 and 5 (a tie: the earlier) use frame 0's top-left box, frame 6 frame 10's bottom-right box
    for index, dark in ((0, (slice(0, 2), slice(0, 2))), (1, (slice(0, 2), slice(0, 2))),
                        (2, (slice(2, 4), slice(2, 4)))):
        expected = np.full((4, 4, 3), 200, dtype=np.uint8)
        expected[dark] = 0
        np.testing.assert_array_equal(out[index], expected)
    # a video without boxes is left as it is
    np.testing.assert_array_equal(transform(frames_of(image), "v2", np.array([0])).numpy()[0], image)


def test_blur_with_boxes_changes_only_the_boxes(tmp_path):
    boxes = write_boxes(tmp_path / "boxes.csv", ["v1,0,0.25,0.25,0.75,0.75"])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = PixelTransform(PixelTransformConfig("blur", boxes=boxes), {"v1"})(frames_of(image), "v1",
                                                                            np.array([0])).numpy()[0]
    inside = np.zeros((16, 16), dtype=bool)
    inside[4:12, 4:12] = True
    np.testing.assert_array_equal(out[~inside], image[~inside])
    assert out[inside].astype(float).std() < image[inside].astype(float).std() / 2


@pytest.mark.parametrize("rows, message", [
    (["v1,0,0.5,0.5,0.2,0.9"], "0 <= x1 < x2 <= 1"),
    (["v1,-1,0,0,1,1"], "frame >= 0"),
    (["v1,a,0,0,1,1"], "frame must be an integer"),
    (["v1,0,0,0,1"], "expected 6 fields"),
    (["nope,0,0,0,1,1"], "not in the dataset, e.g. 'nope'"),
])
def test_bad_box_files_are_one_line_errors(tmp_path, rows, message):
    path = write_boxes(tmp_path / "boxes.csv", rows)
    with pytest.raises(FeatstoreError, match=message) as error:
        read_boxes(path, {"v1"})
    assert "\n" not in str(error.value)


def test_box_file_needs_its_header(tmp_path):
    (tmp_path / "boxes.csv").write_text("v1,0,0,0,1,1\n")
    with pytest.raises(FeatstoreError, match="header video_id,frame,x1,y1,x2,y2"):
        read_boxes(tmp_path / "boxes.csv", {"v1"})


@pytest.mark.parametrize("settings, message", [
    ({"name": "sharpen"}, "--pixel-transform must be one of"),
    ({"name": "blacken"}, "blacken needs --boxes"),
    ({"name": "downsample-2x", "boxes": "b.csv"}, "--boxes applies to blur and blacken"),
    ({"name": "blur", "blur_sigma": 0.0}, "--blur-sigma must be in"),
    ({"name": "blur", "blur_sigma": True}, "--blur-sigma must be in"),  # a bool is not a sigma
    ({"name": "blur", "blur_sigma": "abc"}, "--blur-sigma must be in"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(FeatstoreError, match=message):
        PixelTransformConfig(**settings)


def test_extract_applies_the_transform_and_records_it(few_manifest, tmp_path):
    settings = {"videos_per_part": 4, "batch_size": 4, "sampling": SamplingConfig(static_per_video=1)}
    ids = [record.video_id for record in Manifest.load(few_manifest).records]
    boxes = write_boxes(tmp_path / "boxes.csv", [f"{ids[0]},0,0.0,0.0,1.0,1.0"])
    stores = {}
    with one_torch_thread():
        for name, transform in (("plain", PixelTransformConfig()),
                                ("blacken", PixelTransformConfig("blacken", boxes=boxes))):
            out = tmp_path / f"{name}.zarr"
            extract(ExtractConfig(model="tiny-vit", dataset=str(few_manifest), out=str(out), pixel_transform=transform,
                                  **settings), show_progress=False)
            stores[name] = Store.open(out)
    plain, blackened = stores["plain"], stores["blacken"]
    assert "pixel_transform" not in plain.identity  # stores made before pixel transforms stay current
    record = blackened.identity["pixel_transform"]
    assert record["name"] == "blacken" and len(record["boxes_sha256"]) == 64
    assert blackened.attrs["provenance"]["pixel_transform"]["boxes"] == boxes
    first = slice(*plain.clip_offsets()[:2])
    rest = slice(plain.clip_offsets()[1], None)
    clips_plain = np.asarray(plain.embeddings("clips")[:], dtype=np.float32)
    clips_black = np.asarray(blackened.embeddings("clips")[:], dtype=np.float32)
    # the first video's frames all go black (one box over the whole frame, the nearest annotation for every frame)
    assert not np.allclose(clips_plain[first], clips_black[first])
    black_frame_clip = clips_black[first]
    assert np.allclose(black_frame_clip, black_frame_clip[0], atol=1e-2)  # every clip of black frames is the same
    np.testing.assert_array_equal(clips_plain[rest], clips_black[rest])  # the other videos are untouched


def test_extract_command_takes_the_transform_and_info_shows_it(few_manifest, tmp_path, monkeypatch, capsys):
    out = tmp_path / "small.zarr"
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "extract", "--model", "tiny-vit", "--dataset",
                                  str(few_manifest), "--out", str(out), "--pixel-transform", "downsample-4x",
                                  "--static-per-video", "1", "--no-progress")
    assert code == 0, err
    assert Store.open(out).identity["pixel_transform"] == {"name": "downsample-4x"}
    code, shown, err = run_in_process(monkeypatch, capsys, "featstore", "info", "--store", str(out))
    assert code == 0 and "pixel transform" in shown and "name downsample-4x" in shown
    # the same store with another transform is another identity: refused without --overwrite, nothing lost
    code, _, err = run_in_process(monkeypatch, capsys, "featstore", "extract", "--model", "tiny-vit", "--dataset",
                                  str(few_manifest), "--out", str(out), "--pixel-transform", "blur",
                                  "--static-per-video", "1", "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "pixel_transform" in err
    assert Store.open(out).identity["pixel_transform"] == {"name": "downsample-4x"}
