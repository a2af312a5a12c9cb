import numpy as np
import pytest

from featstore.decode import PyAVSource, VideoDecodeError, decord_available, open_media


def test_pyav_reads_forward_in_chunks_and_matches_full_decode(synth_root):
    path = synth_root / "trimmed" / "trim_00000.mp4"
    source = PyAVSource(path)
    n = source.info.n_frames
    chunks = [source.read(np.arange(0, 16)), source.read(np.array([16, 16, 20])), source.read(np.array([n - 1]))]
    source.close()
    full = PyAVSource(path)
    everything = full.read(np.arange(n))
    full.close()
    np.testing.assert_array_equal(chunks[0], everything[:16])
    np.testing.assert_array_equal(chunks[1], everything[[16, 16, 20]])
    np.testing.assert_array_equal(chunks[2], everything[[n - 1]])
    with pytest.raises(ValueError, match="forward only"):
        again = PyAVSource(path)
        again.read(np.array([5]))
        again.read(np.array([2]))


@pytest.mark.skipif(not decord_available(), reason="decord has no wheel for this platform")
def test_decord_and_pyav_agree_on_metadata_and_frames(synth_root):
    path = synth_root / "trimmed" / "trim_00002.mp4"
    fast, slow = open_media(path, "decord"), open_media(path, "pyav")
    assert fast.info == slow.info
    idx = np.array([0, 5, 17, fast.info.n_frames - 1])
    diff = np.abs(fast.read(idx).astype(int) - slow.read(idx).astype(int))
    assert diff.mean() < 2.0  # both decode the same H.264 stream; only the YUV->RGB rounding may differ


@pytest.mark.parametrize("decoder", ["auto", "pyav"])
def test_unreadable_files_raise_a_reason(tmp_path, decoder):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("hello")
    with pytest.raises(VideoDecodeError, match="zero-byte"):
        open_media(tmp_path / "empty.mp4", decoder)
    with pytest.raises(VideoDecodeError):
        open_media(tmp_path / "text.mp4", decoder)
    with pytest.raises(VideoDecodeError, match="not found"):
        open_media(tmp_path / "missing.mp4", decoder)


def test_images_open_as_one_frame(synth_root):
    image = next((synth_root / "images").glob("*.png"))
    source = open_media(image, media="image")
    assert source.info.n_frames == 1
    assert source.read(np.array([0, 0])).shape[0] == 2
