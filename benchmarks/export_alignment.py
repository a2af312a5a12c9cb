"""How much of one store's clip embeddings is a linear function of another's, on the same videos' clips.

    python benchmarks/export_alignment.py runs/sweep-default/baseline-lda-action/anon.zarr \
        runs/sweep-default/independence-cosine{,-seed1,-seed2}/anon.zarr

The first store is the reference (e.g. the ``lda-action`` export: the span of the action labels' discriminant
directions), every later one is compared with it on the ``--split`` clips:

- ``rank``: the directions with variance (singular values above ``RANK_RTOL`` x the largest, centred clips);
- ``canonical correlations`` between the two (centred) clip sets, largest first: 1 where a direction of one is a
  linear function of the other;
- ``R2``: the share of the compared store's variance that a least-squares linear map of the reference explains.

Both stores must hold the same videos with the same clips (exports of one raw store).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from data_manifests.errors import FeatstoreError  # noqa: E402
from evaluate.shortcut import split_rows  # noqa: E402
from featstore.store import Store  # noqa: E402

RANK_RTOL = 1e-2  # a direction counts when its singular value is above this x the largest: a float16 export's rounding
# noise reads up to about 1e-3 of it (lda-action's export, whose values carry the raw mean)


def split_clips(store: Store, split: str) -> tuple[np.ndarray, tuple[list[str], list[int]]]:
    """The split's clip embeddings (float64, in video order) and their layout: the videos' ids and clip counts."""
    videos = store.split_indices(split)
    layout = ([str(i) for i in store.videos().video_id[videos]], np.diff(store.clip_offsets())[videos].tolist())
    rows = split_rows(store, "clips", split)
    return np.asarray(store.read_rows(store.clip_embeddings, rows), dtype=np.float64), layout


def centred_basis(values: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the centred rows' column space (the directions with variance)."""
    left, singular, _ = np.linalg.svd(values - values.mean(axis=0), full_matrices=False)
    return left[:, singular > RANK_RTOL * singular[0]]


def alignment(basis_reference: np.ndarray, compared: np.ndarray) -> dict:
    """``compared`` against the reference's ``centred_basis``."""
    basis_compared = centred_basis(compared)
    correlations = np.linalg.svd(basis_reference.T @ basis_compared, compute_uv=False)
    centred = compared - compared.mean(axis=0)
    explained = basis_reference @ (basis_reference.T @ centred)
    return {"rank": basis_compared.shape[1], "canonical_correlations": correlations,
            "r2": float((explained ** 2).sum() / (centred ** 2).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="The reference store (e.g. an lda-action export).")
    parser.add_argument("stores", nargs="+", type=Path, help="Stores of the same videos to compare with it.")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    try:
        reference, layout = split_clips(Store.open(args.reference), args.split)
        compared = {}
        for path in args.stores:
            compared[path], their_layout = split_clips(Store.open(path), args.split)
            if their_layout != layout:
                raise FeatstoreError(f"{path} does not hold the same {args.split!r} clips as {args.reference}")
    except FeatstoreError as error:
        parser.error(str(error))
    basis_reference = centred_basis(reference)
    print(f"reference {args.reference}: rank {basis_reference.shape[1]} ({len(reference)} {args.split} clips)")
    print("| store | rank | canonical correlations with the reference | R2 from the reference |")
    print("|---|---|---|---|")
    for path, values in compared.items():
        found = alignment(basis_reference, values)
        correlations = " ".join(f"{c:.2f}" for c in found["canonical_correlations"])
        print(f"| {path} | {found['rank']} | {correlations} | {found['r2']:.3f} |")


if __name__ == "__main__":
    main()
