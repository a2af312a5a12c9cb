import numpy as np
import torch

from featstore.preprocess import PreprocessSpec, preprocess_frames, resized_shape

SPEC = PreprocessSpec(resize_short=8, crop=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def test_resized_shape_keeps_aspect_ratio():
    assert resized_shape(240, 320, 256) == (256, 341)
    assert resized_shape(320, 240, 256) == (341, 256)
    assert resized_shape(100, 100, 73) == (73, 73)


def test_output_shape_and_normalization_of_a_flat_frame():
    frames = np.full((2, 16, 16, 3), 191, dtype=np.uint8)  # 191/255 = 0.749
    out = preprocess_frames(frames, SPEC)
    assert out.shape == (2, 3, 4, 4)
    expected = (191 / 255 - 0.5) / 0.25
    torch.testing.assert_close(out, torch.full_like(out, expected), atol=1e-4, rtol=0)


def test_centre_crop_takes_the_middle():
    # 8x8 frame, no resize (short side already 8): the centre 4x4 block is marked.
    frames = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    frames[0, 2:6, 2:6] = 255
    spec = PreprocessSpec(resize_short=8, crop=4, mean=(0, 0, 0), std=(1, 1, 1))
    out = preprocess_frames(frames, spec)
    torch.testing.assert_close(out, torch.ones_like(out))


def test_wide_frame_is_cropped_horizontally():
    frames = np.zeros((1, 8, 16, 3), dtype=np.uint8)
    frames[0, :, 6:10] = 255  # a vertical band in the middle
    spec = PreprocessSpec(resize_short=8, crop=8, mean=(0, 0, 0), std=(1, 1, 1))
    out = preprocess_frames(frames, spec)[0, 0]
    assert out.shape == (8, 8)
    assert torch.all(out[:, 2:6] == 1) and torch.all(out[:, :2] == 0) and torch.all(out[:, 6:] == 0)
