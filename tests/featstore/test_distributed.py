"""Scale-out: parts spread over torchrun ranks (gloo, CPU), finalize by hand, resume with another world
size, decoding in worker processes. Every way of running must give the single-process store."""

import shutil

import pytest
import torch

import featstore.extract
from featstore.distributed import assign_parts, video_costs
from data_manifests.errors import FeatstoreError
from featstore.decode_stream import resolve_workers
from featstore.extract import ExtractConfig, extract
from featstore.store import STAGING_DIR, Store
from tests.featstore._scaleout import (  # noqa: F401  (fixtures)
    BROKEN_ID,
    CLI_SETTINGS,
    cli_in_process,
    run_torchrun,
    small_config,
    small_manifest,
    small_reference,
)
from tests.featstore.test_extract_cli import all_arrays, assert_same_arrays

pytestmark = pytest.mark.usefixtures("single_thread")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_parts_go_to_the_least_loaded_rank_costliest_first():
    costs = [5.0, 1.0, 1.0, 1.0, 4.0, 2.0, 2.0, 3.0]
    assignment = assign_parts(list(range(8)), costs, 3)
    # By hand: 0(5)->r0, 4(4)->r1, 7(3)->r2, 5(2)->r2, 6(2)->r1, 1(1)->r0, 2(1)->r2, 3(1)->r0 (ties: lower rank).
    assert assignment == [[0, 1, 3], [4, 6], [2, 5, 7]]
    assert assign_parts(list(range(8)), costs, 3) == assignment  # deterministic
    # A resumed job assigns only what is missing, whatever the world size was before.
    assert assign_parts([1, 5, 6], [costs[i] for i in (1, 5, 6)], 2) == [[1, 5], [6]]
    assert assign_parts([2], [1.0], 4) == [[2], [], [], []]


def test_video_costs_use_durations_else_file_sizes_else_counts():
    assert video_costs([2.0, 10.0]) == [3.0, 11.0]  # seconds + a fixed per-video overhead
    assert video_costs([2.0, None], lambda: [100, 300]) == [101.0, 301.0]  # one unknown: sizes for all
    assert video_costs([None, None]) == [1.0, 1.0]


def test_worker_option_defaults_and_checks():
    assert resolve_workers(None, torch.device("cpu")) == 0
    assert resolve_workers(None, torch.device("cuda"), local_world_size=10**6) == 1
    assert 1 <= resolve_workers(None, torch.device("cuda")) <= 8
    assert resolve_workers(3, torch.device("cpu")) == 3
    with pytest.raises(FeatstoreError, match="--workers"):
        ExtractConfig(model="tiny-vit", dataset="x", out="y", workers=-1)


def test_decoding_in_worker_processes_gives_the_inline_arrays(small_manifest, small_reference, tmp_path):
    out = tmp_path / "workers.zarr"
    result = extract(small_config(small_manifest, out, workers=2), show_progress=False)
    assert_same_arrays(out, small_reference)
    store = Store.open(out)
    assert store.failures == Store.open(small_reference).failures and result.n_failed == 1
    assert store.provenance["workers"] == 2 and "workers" not in store.identity


def test_two_gloo_ranks_give_the_single_process_store(small_manifest, small_reference, tmp_path):
    out = tmp_path / "ranks.zarr"
    done = run_torchrun("extract", "--model", "tiny-vit", "--dataset", str(small_manifest), "--out", str(out),
                        *CLI_SETTINGS)
    output = flat(done.stdout + done.stderr)
    assert done.returncode != 0 and "1 videos failed" in output and BROKEN_ID in output  # rank 0 exits 1
    assert "rank 1/2:" in output and "2 ranks)" in output  # one summary line per rank
    assert not (out / STAGING_DIR).exists()
    assert_same_arrays(out, small_reference)  # same videos, clips, order; embeddings bit for bit
    store = Store.open(out)
    assert store.failures == Store.open(small_reference).failures  # finalize collected the part's failure
    assert store.provenance["world_size"] == 2

    # An error found by rank 0 (other settings) reaches both ranks as one line each; nothing is touched.
    before = all_arrays(out)
    refused = run_torchrun("extract", "--model", "tiny-vit", "--dataset", str(small_manifest), "--out", str(out),
                           *CLI_SETTINGS, "--stride", "8")
    output = flat(refused.stdout + refused.stderr)
    assert refused.returncode != 0 and output.count("was made with other settings (sampling differ)") == 2
    after = all_arrays(out)
    assert all((before[name] == after[name]).all() for name in before)


def test_finalize_by_hand_and_resume_with_another_world_size(small_manifest, small_reference, tmp_path,
                                                             monkeypatch, capsys):
    staged = tmp_path / "staged.zarr"

    def rank0_dies(out, settle_seconds=0.0):
        raise RuntimeError("rank 0 died before finalizing")

    with monkeypatch.context() as patch:
        patch.setattr(featstore.extract, "finalize_store", rank0_dies)
        with pytest.raises(RuntimeError, match="rank 0 died"):
            extract(small_config(small_manifest, staged), show_progress=False)
    assert len(list((staged / STAGING_DIR).glob("part-*.npz"))) == 4
    with pytest.raises(FeatstoreError, match="unfinished extraction"):
        Store.open(staged)

    by_hand = tmp_path / "by_hand.zarr"
    shutil.copytree(staged, by_hand)
    code, out, err = cli_in_process(monkeypatch, capsys, "finalize", str(by_hand))
    assert code == 0, err
    assert "finalized 4 parts" in flat(out) and "(1 failed)" in flat(out)
    assert_same_arrays(by_hand, small_reference)
    assert Store.open(by_hand).failures == Store.open(small_reference).failures
    code, out, _ = cli_in_process(monkeypatch, capsys, "finalize", str(by_hand))
    assert code == 0 and "already complete" in out

    # Two parts lost (e.g. their rank was killed): finalize names them and keeps everything else.
    for index in (1, 2):
        (staged / STAGING_DIR / f"part-{index:06d}.npz").unlink()
    code, out, err = cli_in_process(monkeypatch, capsys, "finalize", str(staged))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "2 of 4 parts are missing (part-000001, part-000002)" in flat(err)
    assert len(list((staged / STAGING_DIR).glob("part-*.npz"))) == 2

    # The single-process job's parts are resumed by two ranks, which compute only the missing ones.
    done = run_torchrun("extract", "--model", "tiny-vit", "--dataset", str(small_manifest), "--out", str(staged),
                        *CLI_SETTINGS)
    output = flat(done.stdout + done.stderr)
    assert "1 videos failed" in output, output[-2000:]
    assert "1 parts computed, 2 reused, 2 ranks)" in output and "rank 1/2: 1 parts" in output
    assert_same_arrays(staged, small_reference)
