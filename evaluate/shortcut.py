"""Diagnostics of the static-clip shortcut: did an anonymizer treat static clips and full clips differently?

A budget that sees only static clips (one frame tiled to a clip) can be satisfied by moving static-looking
inputs while leaving the full clips (what users consume) in place, whenever the two kinds of input are
separable in the embedding space (docs/anonymize.md, "Does it anonymize?"). For a raw store and the store
exported from it:

- ``static_vs_clip_separability``: balanced test accuracy of a logistic regression that tells static
  clips from full clips in the RAW space (trained on the train split, balanced classes): near 1 = an anonymizer can
  treat the two kinds differently.
- ``move_static`` / ``move_clips``: mean ||f(z) - z||^2 / mean ||z - mean z||^2 over the test split: how
  far the anonymizer moved each kind of input, relative to the spread of the raw data.
- ``move_ratio``: move_static / move_clips; far above 1 with a static-only drop in leakage is the shortcut.
"""

from __future__ import annotations

import numpy as np

from featstore.store import Store

KINDS = ("static", "clips")


def split_rows(store: Store, kind: str, split: str) -> np.ndarray:
    """The rows of ``kind`` ("static" or "clips") of the videos of ``split``."""
    offsets = store.clip_offsets() if kind == "clips" else store.static_offsets()
    videos = store.split_indices(split)
    return np.concatenate([np.arange(offsets[v], offsets[v + 1]) for v in videos] or [np.zeros(0, np.int64)])


def static_vs_clip_separability(store: Store) -> float | None:
    """Test accuracy of a logistic regression separating static clips from clips; None without both kinds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    parts = []
    embeddings = {kind: store.load_embeddings(kind) for kind in KINDS}
    for split in ("train", "test"):
        clips = embeddings["clips"][split_rows(store, "clips", split)]
        static = embeddings["static"][split_rows(store, "static", split)]
        if len(clips) == 0 or len(static) == 0:
            return None
        parts.append((np.concatenate([clips, static]).astype(np.float64), np.r_[np.zeros(len(clips)), np.ones(len(static))]))
    scaler = StandardScaler().fit(parts[0][0])
    model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(scaler.transform(parts[0][0]), parts[0][1])
    # balanced accuracy: a store with 10 static clips per 3 clips would otherwise read 0.77 by the majority alone
    return float(balanced_accuracy_score(parts[1][1], model.predict(scaler.transform(parts[1][0]))))


def relative_move(raw: Store, anon: Store, kind: str) -> float | None:
    """mean ||f(z) - z||^2 / mean ||z - mean z||^2 over the test rows of ``kind``; None without such rows."""
    rows = split_rows(raw, kind, "test")
    if len(rows) < 2:
        return None
    z = raw.load_embeddings(kind)[rows].astype(np.float64)
    moved = anon.load_embeddings(kind)[rows].astype(np.float64)
    spread = float(((z - z.mean(0)) ** 2).sum(1).mean())
    return float(((moved - z) ** 2).sum(1).mean()) / max(spread, 1e-12)


def shortcut_diagnostics(raw: Store, anon: Store) -> dict:
    """Separability of static clips from clips (raw) and how far each kind moved (see the module docs)."""
    move_static, move_clips = relative_move(raw, anon, "static"), relative_move(raw, anon, "clips")
    ratio = None if move_static is None or not move_clips else move_static / move_clips
    return {"static_vs_clip_separability": static_vs_clip_separability(raw), "move_static": move_static,
            "move_clips": move_clips, "move_ratio": ratio}
