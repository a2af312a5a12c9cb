"""Video retrieval (UCF101-style): test videos query the training videos by cosine similarity.

A video's embedding is the mean of all its clip embeddings. Relevant = same action label. Reported:
R@1/5/10 (a query scores when one of its k nearest gallery videos is relevant) and mAP over queries
(AP of the whole ranked gallery; tied similarities share a threshold, see ``evaluate.metrics``).
Unlabelled videos take no part. No training: the embeddings are compared as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from evaluate.options import config_options, json_option, out_option, run_command, store_option
from evaluate.settings import check, device_setting, setting

if TYPE_CHECKING:
    import numpy as np
    import torch

    from featstore.store import Store


@dataclass
class RetrievalConfig:
    ks: list[int] = setting([1, 5, 10], "Cut-offs for R@k (repeat the option).")
    query_split: str = "test"
    gallery_split: str = "train"
    device: str = device_setting()

    def __post_init__(self):
        self.ks = list(self.ks)
        check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), f"every k must be >= 1, got {self.ks}")
        check(self.query_split != self.gallery_split, "query_split and gallery_split must differ")


def cosine_matrix(queries: torch.Tensor, gallery: torch.Tensor) -> np.ndarray:
    """(Q, G) cosine similarities computed on the tensors' device, returned as float64 numpy."""
    from torch.nn.functional import normalize

    return (normalize(queries.float(), dim=1) @ normalize(gallery.float(), dim=1).T).double().cpu().numpy()


def run(store: Store, config: RetrievalConfig, *, show_progress: bool = False) -> dict:
    from evaluate.data import StoreData
    from evaluate.metrics import retrieval_metrics
    from evaluate.protocols._classifier import labelled_videos
    from evaluate.training import Stopwatch, device_of, timing_block

    watch = Stopwatch(device_of(config.device))
    data = StoreData(store, watch.device, kinds=("clips",))
    queries = labelled_videos(data, config.query_split)
    gallery = labelled_videos(data, config.gallery_split)
    similarity = cosine_matrix(data.video_means(queries), data.video_means(gallery))
    labels = data.videos.label
    result = retrieval_metrics(similarity, labels[queries], labels[gallery], ks=config.ks)
    metrics = {f"R@{k}": value for k, value in result["recall"].items()}
    metrics.update({
        "mAP": result["map"],
        "n_queries": result["n_queries"],
        "n_gallery": int(len(gallery)),
        "n_queries_without_relevant": result["n_without_relevant"],
        "timing": timing_block(watch.seconds(), []),
    })
    return metrics


def register(app: typer.Typer) -> None:
    @app.command("retrieval")
    @config_options(RetrievalConfig, ("ks", "--k"), "device")
    def retrieval_command(*, store: str = store_option(), config: RetrievalConfig,
                          out: Optional[Path] = out_option(), as_json: bool = json_option()) -> None:
        """Video retrieval: test queries vs train gallery, cosine of mean clip embeddings; R@k and mAP."""
        run_command("retrieval", run, config, store, out, as_json=as_json)
