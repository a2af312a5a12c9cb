"""Gait: the standard CASIA-B cross-view evaluation, and train/test splits for other stores."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from data_manifests.schema import VideoRecord
from evaluate.cli import app
from evaluate.protocols.gait import GaitConfig, resolve_protocol, run
from data_manifests.errors import FeatstoreError
from featstore.store import Part, StagingArea, Store, StoreContents, VideoResult, write_store

VIEWS = ("000", "090", "180")
SUBJECTS = ("001", "002", "003")
# The subject code a video carries is its subject's index shifted by the walk's view: matching across two
# views finds the right subject only when both views shift alike. Gallery and NM probes shift view 180
# alone; BG probes shift every view.
SHIFT = {"nm": {"000": 0, "090": 0, "180": 1}, "bg": {"000": 1, "090": 1, "180": 1}}
DIM = len(VIEWS) + len(SUBJECTS)


def casia_embedding(subject: str, condition: str, view: str) -> np.ndarray:
    """One-hot view plus one-hot subject code: within one gallery view the nearest video is the one whose code
    matches (cosine 1.0 against 0.5 for every other subject, no ties)."""
    embedding = np.zeros(DIM, dtype=np.float32)
    embedding[VIEWS.index(view)] = 1.0
    code = (SUBJECTS.index(subject) + SHIFT[condition][view]) % len(SUBJECTS)
    embedding[len(VIEWS) + code] = 1.0
    return embedding


def write_synthetic_store(path, videos: list[tuple[str, str, str, np.ndarray | None]]):
    """A finished store of ``(video_id, split, subject, embedding)`` videos; each gets two clips whose mean is
    its embedding (None: a failed video, no clips)."""
    staging = StagingArea(path, DIM, "float32")
    staging.create()
    results = []
    for video_id, _, _, embedding in videos:
        if embedding is None:
            results.append(VideoResult(video_id, failed_reason="unreadable"))
            continue
        wobble = np.full(DIM, 0.25, dtype=np.float32)
        results.append(VideoResult(
            video_id, decoder="synthetic", n_frames=32, fps=25.0, duration=1.28,
            clip_embeddings=np.stack([embedding + wobble, embedding - wobble]),
            clip_frames=np.array([[0, 16], [16, 32]], dtype=np.int64), clip_times=np.array([[0.0, 0.64], [0.64, 1.28]]),
            static_embeddings=np.zeros((0, DIM), dtype=np.float32), static_frames=np.zeros(0, dtype=np.int64),
        ))
    staging.save_part(Part(0, results))
    records = [VideoRecord(video_id=video_id, path=f"{video_id}.avi", split=split, subject=subject)
               for video_id, split, subject, _ in videos]
    write_store(path, StoreContents(records, [], {"dataset": {"header": {"name": "synthetic-gait"}}}), staging, 1)
    staging.remove()
    return path


def casia_videos() -> list:
    """3 subjects x 3 views: nm-01..06 and bg-01/02 (no coat walks), in name order as the builder writes them,
    plus one failed gallery video and one walk outside the protocol (nm-07)."""
    videos = []
    for subject in SUBJECTS:
        for condition, sequences in (("bg", (1, 2)), ("nm", (1, 2, 3, 4, 5, 6))):
            for sequence in sequences:
                for view in VIEWS:
                    split = "train" if condition == "nm" and sequence <= 4 else "test"
                    videos.append((f"{subject}-{condition}-{sequence:02d}-{view}", split, subject,
                                   casia_embedding(subject, condition, view)))
    videos.append(("003-nm-07-090", "test", "003", casia_embedding("003", "nm", "090")))
    return [(*video[:3], None) if video[0] == "002-nm-03-090" else video for video in videos]


@pytest.fixture
def casia_store(tmp_path):
    return write_synthetic_store(tmp_path / "casia.zarr", casia_videos())


def test_casia_b_names_give_the_standard_cross_view_protocol(casia_store):
    metrics = run(Store.open(casia_store), GaitConfig())
    assert metrics["protocol"] == "casia-b"
    assert list(metrics["conditions"]) == ["NM", "BG"]  # the store has no coat walks: no CL
    nm, bg = metrics["conditions"]["NM"], metrics["conditions"]["BG"]
    assert nm["probe_walks"] == ["nm-05", "nm-06"] and bg["probe_walks"] == ["bg-01", "bg-02"]
    # cell (p, g) is right exactly when views p and g shift alike
    assert nm["cross_view"] == {"000": {"000": 1.0, "090": 1.0, "180": 0.0},
                                "090": {"000": 1.0, "090": 1.0, "180": 0.0},
                                "180": {"000": 0.0, "090": 0.0, "180": 1.0}}
    assert bg["cross_view"] == {p: {"000": 0.0, "090": 0.0, "180": 1.0} for p in VIEWS}
    # identical view excluded: 180's only right cell is its own view, so it scores 0
    assert nm["per_probe_view"] == {"000": 0.5, "090": 0.5, "180": 0.0}
    assert bg["per_probe_view"] == {"000": 0.5, "090": 0.5, "180": 0.0}
    assert nm["rank1"] == pytest.approx(1 / 3) and nm["rank1_including_identical_view"] == pytest.approx(5 / 9)
    assert bg["rank1"] == pytest.approx(1 / 3) and bg["rank1_including_identical_view"] == pytest.approx(1 / 3)
    # the old protocol (every video a walk in store order, first 4 = gallery, last 2 = probes) gave 0.5 here
    assert metrics["rank1"] == pytest.approx(1 / 3)
    assert metrics["chance_rank1"] == pytest.approx(1 / 3) and metrics["n_subjects"] == 3
    assert metrics["n_gallery"] == 3 * 4 * 3 - 1 and nm["n_probes"] == 3 * 2 * 3 and bg["n_probes"] == 3 * 2 * 3
    assert metrics["n_probes"] == 36 and metrics["n_videos_without_clips"] == 1
    assert metrics["n_videos_outside_protocol"] == 1  # nm-07


def test_a_probe_without_a_gallery_video_of_that_view_is_a_miss(tmp_path):
    videos = [video for video in casia_videos() if not (video[0].startswith("001-nm-0") and video[0].endswith("-090")
                                                        and int(video[0][7:9]) <= 4)]
    metrics = run(Store.open(write_synthetic_store(tmp_path / "s.zarr", videos)), GaitConfig())
    # subject 001's nm probes of view 000 cannot be found in gallery view 090: 4 of 6 probes right there
    assert metrics["conditions"]["NM"]["cross_view"]["000"]["090"] == pytest.approx(4 / 6)


def test_the_cli_writes_a_self_describing_result_and_prints_the_view_table(casia_store, tmp_path):
    result = CliRunner().invoke(app, ["gait", "--store", str(casia_store), "--out", str(tmp_path / "out"),
                                      "--device", "cpu"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gait (casia-b)" in result.output and "incl. identical view" in result.output
    assert "NM" in result.output and "BG" in result.output and "identical view excluded" in result.output
    document = json.loads((tmp_path / "out" / "gait.json").read_text())
    assert document["config"]["protocol"] == "auto" and document["metrics"]["protocol"] == "casia-b"
    assert "identical view excluded" in document["metrics"]["rule"]
    assert document["metrics"]["conditions"]["NM"]["per_probe_view"] == {"000": 0.5, "090": 0.5, "180": 0.0}


def splits_videos() -> list:
    """Non-CASIA names: subjects a, b, c in train; test videos of a, b (found) and d (no train video)."""
    rng = np.random.default_rng(0)
    directions = {s: rng.standard_normal(DIM).astype(np.float32) for s in "abcd"}
    videos = [(f"{s}_train_{i}", "train", s, directions[s] + 0.1 * rng.standard_normal(DIM).astype(np.float32))
              for s in "abc" for i in range(2)]
    videos += [("a_test", "test", "a", directions["a"]), ("b_test", "test", "b", directions["c"]),  # b looks like c
               ("d_test", "test", "d", directions["d"]), ("a_val", "val", "a", directions["a"])]
    return videos


def test_a_store_without_casia_names_uses_its_splits_and_says_so(tmp_path):
    store = write_synthetic_store(tmp_path / "plain.zarr", splits_videos())
    metrics = run(Store.open(store), GaitConfig())
    assert metrics["protocol"] == "splits" and "not CASIA-B names" in metrics["note"]
    assert "gallery = train split" in metrics["note"]
    assert metrics["rank1"] == 0.5  # a found, b mistaken for c
    assert (metrics["n_gallery"], metrics["n_probes"], metrics["n_probes_left_out"]) == (6, 2, 1)
    assert metrics["n_subjects"] == 3 and metrics["chance_rank1"] == pytest.approx(1 / 3)

    result = CliRunner().invoke(app, ["gait", "--store", str(store), "--out", str(tmp_path / "out"), "--device", "cpu"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "gait (splits)" in result.output and "note:" in result.output and "not CASIA-B names" in result.output
    document = json.loads((tmp_path / "out" / "gait.json").read_text())
    assert document["metrics"]["protocol"] == "splits" and "not CASIA-B names" in document["metrics"]["note"]


def test_a_casia_store_can_be_evaluated_by_its_splits(casia_store):
    metrics = run(Store.open(casia_store), GaitConfig(protocol="splits"))
    assert metrics["protocol"] == "splits" and metrics["note"].startswith("--protocol splits")
    assert metrics["n_gallery"] == 35 and metrics["n_probes"] == 37  # nm-05..07 and bg: every test video


def test_resolve_protocol():
    casia, plain = ["001-nm-01-090", "124-CL-02-180"], ["trim_00000", "v1"]
    assert resolve_protocol("auto", casia, "s") == "casia-b" and resolve_protocol("auto", plain, "s") == "splits"
    assert resolve_protocol("splits", casia, "s") == "splits" and resolve_protocol("casia-b", casia, "s") == "casia-b"
    with pytest.raises(FeatstoreError, match=r"1 of 3 video ids are not CASIA-B names .*'v1'.*--protocol splits"):
        resolve_protocol("auto", [*casia, "v1"], "s")
    with pytest.raises(FeatstoreError, match="2 of 2 video ids are not CASIA-B names"):
        resolve_protocol("casia-b", plain, "s")
    with pytest.raises(FeatstoreError, match="protocol must be one of"):
        GaitConfig(protocol="casia")


def test_stores_the_protocols_cannot_evaluate_are_clear_errors(tmp_path):
    new_subjects = [video for video in splits_videos() if video[1] == "train" or video[2] == "d"]
    with pytest.raises(FeatstoreError, match="no test video with clips has the subject of a train video"):
        run(Store.open(write_synthetic_store(tmp_path / "new-subjects.zarr", new_subjects)), GaitConfig())
    one_view = [video for video in casia_videos() if video[0].endswith("-090")]
    with pytest.raises(FeatstoreError, match=r"gallery has only view\(s\) \['090'\]"):
        run(Store.open(write_synthetic_store(tmp_path / "one-view.zarr", one_view)), GaitConfig())
    one_subject = [video for video in casia_videos() if video[0].startswith("001")]
    with pytest.raises(FeatstoreError, match="has 1 subjects; gait retrieval needs two or more"):
        run(Store.open(write_synthetic_store(tmp_path / "one-subject.zarr", one_subject)), GaitConfig())
