import numpy as np
import pytest

from featstore.errors import FeatstoreError
from featstore.sampling import (
    SamplingConfig,
    clip_frame_indices,
    clip_windows,
    resample_indices,
    static_frame_indices,
)


def test_non_overlapping_windows_drop_the_partial_tail():
    windows = clip_windows(50, SamplingConfig(clip_len=16))
    assert windows.tolist() == [[0, 16], [16, 32], [32, 48]]


def test_pad_rule_adds_a_padded_tail_clip():
    windows = clip_windows(50, SamplingConfig(clip_len=16, tail="pad"))
    assert windows.tolist() == [[0, 16], [16, 32], [32, 48], [48, 50]]
    assert clip_frame_indices(windows[-1], 16).tolist() == [48, 49] + [49] * 14


def test_exact_multiple_has_no_tail_under_either_rule():
    for tail in ("drop", "pad"):
        assert clip_windows(48, SamplingConfig(clip_len=16, tail=tail)).tolist() == [[0, 16], [16, 32], [32, 48]]


def test_video_shorter_than_a_clip_gives_one_padded_clip():
    windows = clip_windows(5, SamplingConfig(clip_len=16))
    assert windows.tolist() == [[0, 5]]
    assert clip_frame_indices(windows[0], 16).tolist() == [0, 1, 2, 3, 4] + [4] * 11


def test_thumos_stride_4_overlapping_windows():
    windows = clip_windows(30, SamplingConfig(clip_len=16, stride=4))
    assert windows[:, 0].tolist() == [0, 4, 8, 12]
    assert (windows[:, 1] - windows[:, 0]).tolist() == [16] * 4
    padded = clip_windows(30, SamplingConfig(clip_len=16, stride=4, tail="pad"))
    assert padded[-1].tolist() == [16, 30]


def test_empty_video_has_no_clips():
    assert clip_windows(0, SamplingConfig()).shape == (0, 2)
    assert static_frame_indices(0, 10).shape == (0,)


def test_resampling_halves_a_50fps_video_to_25fps():
    idx = resample_indices(100, 50.0, 25.0)
    assert idx.tolist() == list(range(0, 100, 2))


def test_resampling_up_repeats_frames_and_keeps_duration():
    idx = resample_indices(10, 10.0, 20.0)
    assert len(idx) == 20
    assert idx.tolist() == [i // 2 for i in range(20)]


def test_resampling_24_to_25_fps():
    idx = resample_indices(24, 24.0, 25.0)
    # one second of video at 25 fps: 25 ticks, the nearest earlier frame of each
    assert len(idx) == 25
    assert idx[0] == 0 and idx[-1] == 23 and np.all(np.diff(idx) >= 0)


def test_native_rate_is_identity():
    assert resample_indices(7, 30.0, None).tolist() == list(range(7))


def test_static_frames_are_bin_centres():
    assert static_frame_indices(100, 10).tolist() == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    assert static_frame_indices(3, 5).tolist() == [0, 0, 1, 2, 2]


@pytest.mark.parametrize(
    "kwargs",
    [dict(clip_len=0), dict(stride=0), dict(fps=-1.0), dict(tail="wrap"), dict(static_per_video=-1)],
)
def test_bad_sampling_values_are_refused(kwargs):
    with pytest.raises(FeatstoreError):
        SamplingConfig(**kwargs)


def test_recorded_stride_defaults_to_clip_length():
    assert SamplingConfig(clip_len=8).to_json()["stride"] == 8
