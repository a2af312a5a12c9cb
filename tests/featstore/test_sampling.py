import numpy as np
import pytest

from data_manifests.errors import FeatstoreError
from featstore.sampling import (
    SamplingConfig,
    clip_frame_indices,
    clip_windows,
    evenly_spaced_positions,
    read_sampling_record,
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


def test_linspace_positions_are_the_authors_truncated_numpy_linspace():
    assert static_frame_indices(100, 10, "linspace").tolist() == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert static_frame_indices(3, 5, "linspace").tolist() == [0, 0, 1, 1, 2]  # repeats, first and last kept
    for n in (1, 2, 7, 16, 91, 100, 171, 1000):
        for k in (1, 5, 10, 11):
            assert static_frame_indices(n, k, "linspace").tolist() == np.linspace(0, n - 1, k).astype(int).tolist()
    # per video as the evaluation clips use it; a count of 1 beside others must not change their floats
    # (np.linspace over an array of counts truncates 62.99... where the scalar call gives 63)
    positions = evenly_spaced_positions(np.array([1, 91, 0, 5]), 11, "linspace")
    assert positions[1].tolist() == np.linspace(0, 90, 11).astype(int).tolist() and positions[1][7] == 63
    assert positions[0].tolist() == [0] * 11 and positions[3].tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4]
    assert evenly_spaced_positions(np.array([100]), 10)[0].tolist() == static_frame_indices(100, 10).tolist()
    with pytest.raises(FeatstoreError, match="positions must be one of"):
        evenly_spaced_positions(np.array([10]), 5, "middle")


def test_the_static_frame_rule_is_recorded_and_unrecorded_means_centres():
    assert SamplingConfig().to_json()["static_positions"] == "centres"
    assert SamplingConfig(static_positions="linspace").to_json()["static_positions"] == "linspace"
    before = {"clip_len": 16, "stride": 16, "fps": None, "tail": "drop", "static_per_video": 10}  # an older store
    assert read_sampling_record(before) == {**before, "static_positions": "centres"}
    assert read_sampling_record(SamplingConfig(static_positions="linspace").to_json())["static_positions"] == "linspace"


@pytest.mark.parametrize(
    "kwargs",
    [dict(clip_len=0), dict(stride=0), dict(fps=-1.0), dict(tail="wrap"), dict(static_per_video=-1),
     dict(static_positions="middle")],
)
def test_bad_sampling_values_are_refused(kwargs):
    with pytest.raises(FeatstoreError):
        SamplingConfig(**kwargs)


def test_recorded_stride_defaults_to_clip_length():
    assert SamplingConfig(clip_len=8).to_json()["stride"] == 8
