"""The encode side of extraction: one part's decode stream -> fixed batches through the encoder -> rows per video.

A part is encoded as one stream of clips cut into batches of ``batch_size``, so the batches, and
therefore the numbers, depend only on the part.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from data_manifests.schema import VideoRecord
from featstore.decode_stream import DecodedChunk, VideoPlan
from featstore.device import autocast
from featstore.encoders import LoadedEncoder
from featstore.pixel_transforms import PixelTransform
from featstore.preprocess import preprocess_frames
from featstore.progress import ExtractProgress
from featstore.store import VideoResult


class PartEncoder:
    """Consumes one part's stream, cuts it into fixed batches and routes embeddings back to videos.

    Embeddings stay on the encoder's device until the part ends and then come back in one copy, so a
    GPU is not made to wait for the host after every batch.
    """

    def __init__(self, encoder: LoadedEncoder, device: torch.device, precision: torch.dtype, batch_size: int,
                 pixel_transform: PixelTransform):
        self.encoder, self.device, self.precision, self.batch_size = encoder, device, precision, batch_size
        self.pixel_transform = pixel_transform
        self.preprocess = encoder.spec.preprocess()
        self.forward_seconds = 0.0
        self._cuda_timings: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    def run(self, records: list[VideoRecord], stream: Iterator, progress: ExtractProgress) -> list[VideoResult]:
        plans: dict[int, VideoPlan] = {}
        outputs: list[torch.Tensor] = []  # one (batch, D) float32 tensor per forward
        owners: list[tuple[int, str, int]] = []  # (video position, kind, rows), in output row order
        pending: list[tuple[int, str, torch.Tensor]] = []
        pending_rows = 0

        def flush(limit: int | None) -> None:
            nonlocal pending, pending_rows
            while pending and (limit is None or pending_rows >= limit):
                take = self.batch_size if limit is not None else pending_rows
                take = min(take, pending_rows)
                pieces, got = [], 0
                while got < take:
                    position, kind, clips = pending[0]
                    need = take - got
                    if len(clips) <= need:
                        pending.pop(0)
                        piece = clips
                    else:
                        piece, pending[0] = clips[:need], (position, kind, clips[need:])
                    pieces.append(piece)
                    owners.append((position, kind, len(piece)))
                    got += len(piece)
                outputs.append(self._forward(torch.cat(pieces)))
                pending_rows -= take
                if limit is None:
                    break

        for item in stream:
            if isinstance(item, VideoPlan):
                plans[item.position] = item
            elif isinstance(item, DecodedChunk):
                clips = self._clips(item, records[item.position].video_id)
                pending.append((item.position, item.kind, clips))
                pending_rows += len(clips)
                flush(self.batch_size)
            elif item.failed is not None:
                plans[item.position] = item.failed
        flush(None)

        rows = self._route(outputs, owners)
        results = []
        for position, record in enumerate(records):
            plan = plans[position]
            if plan.failed_reason:
                results.append(VideoResult(record.video_id, failed_reason=plan.failed_reason, decoder=plan.decoder))
                progress.video_done(0, self.forward_seconds, failed=True)
                continue
            clips = _gather(rows.get((position, "clip")), self.encoder.spec.embed_dim)
            static = _gather(rows.get((position, "static")), self.encoder.spec.embed_dim)
            results.append(
                VideoResult(
                    video_id=record.video_id,
                    decoder=plan.decoder,
                    n_frames=plan.n_frames,
                    fps=plan.fps,
                    duration=plan.n_frames / plan.fps if plan.fps else 0.0,
                    clip_embeddings=clips,
                    clip_frames=plan.clip_frames,
                    clip_times=plan.clip_times,
                    static_embeddings=static,
                    static_frames=plan.static_frames,
                )
            )
            progress.video_done(len(clips) + len(static), self.forward_seconds)
        return results

    def _clips(self, chunk: DecodedChunk, video_id: str) -> torch.Tensor:
        """uint8 frames -> pixel transform -> preprocessed (n, 3, T, H, W) clips on the encoder's device."""
        frames = torch.as_tensor(chunk.frames).to(self.device, non_blocking=True)  # async when pinned
        frames = self.pixel_transform(frames, video_id, chunk.frame_numbers)
        frames = preprocess_frames(frames, self.preprocess)
        return frames[torch.from_numpy(chunk.index).to(self.device)].permute(0, 2, 1, 3, 4)

    def _forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # GPU time, read once the part's rows are back on the host
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = self._encode(clips)
            end.record()
            self._cuda_timings.append((start, end))
            return out
        started = time.perf_counter()
        out = self._encode(clips)
        self.forward_seconds += time.perf_counter() - started
        return out

    def _encode(self, clips: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.encoder.module(clips).float()

    def _route(self, outputs: list[torch.Tensor], owners: list[tuple[int, str, int]]) -> dict:
        """All of the part's embeddings to the host in one copy, then split back per (video, kind)."""
        with torch.inference_mode():
            if outputs:
                table = torch.cat(outputs).cpu().numpy()
            else:
                table = np.zeros((0, self.encoder.spec.embed_dim), np.float32)
        for start, end in self._cuda_timings:  # complete: the copy above waited for them
            self.forward_seconds += start.elapsed_time(end) / 1000.0
        self._cuda_timings.clear()
        rows: dict[tuple[int, str], list[np.ndarray]] = {}
        at = 0
        for position, kind, n in owners:
            rows.setdefault((position, kind), []).append(table[at : at + n])
            at += n
        return rows


def _gather(blocks: list | None, dim: int) -> np.ndarray:
    if not blocks:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(blocks)
