"""The Anonymizing Adapter Module (AAM): embeddings in, embeddings of the same shape out.

Variants (paper appendix Table 10/12):

- ``attention``: ``layers`` residual self-attention blocks of ``heads`` heads (default 3 x 8).
  ``block="transformer"`` (default): pre-LayerNorm attention + pre-LayerNorm feed-forward
  (hidden ``ffn_ratio`` x dim, GELU). With ``ffn_ratio=2`` the trainable parameters for the paper's
  encoder dims land within ~1% of its Table 16 (see docs/anonymize.md). ``block="attention-only"``:
  ``x + MHA(x, x, x)`` with no norm and no feed-forward, the authors' code.
- ``mlp``: ``layers`` x [Linear(d, d) -> ReLU -> BatchNorm1d -> Dropout(0.1)].

Modes, for the attention variant:

- ``clip`` (default): every embedding is its own one-token sequence, so a sample's output never
  depends on the rest of its batch (the authors' code passes a 2-D [B, D] tensor to a
  sequence-first attention, which makes every sample attend to the whole batch). With one token the
  softmax is 1 and attention reduces to the value and output projections: the query/key weights are
  unused (zero gradient) in this mode, and the block's non-linearity comes from its feed-forward.
- ``temporal``: a (B, T, D) sequence of one video's consecutive clips; each clip attends to the clips
  within ``window`` positions of itself (a banded mask) that are real (``mask`` True). A 2-D (N, D)
  input is N one-clip sequences, i.e. the clip mode.

With ``output_floor`` > 0, ``output_rank`` > 0 or ``output_centre`` the AAM ends in an ``OutputProjection``, the
identity while it trains; ``anonymize.train`` fits it after the last epoch (see its docs for why).

The MLP's BatchNorm1d mixes the samples of a training batch (batch statistics); in eval mode (export,
evaluation) every variant is batch-independent.
"""

from __future__ import annotations

import torch
from torch import nn

from anonymize.config import AAMConfig
from data_manifests.errors import FeatstoreError


class AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, block: str, ffn_ratio: float):
        super().__init__()
        if dim % heads:
            raise FeatstoreError(f"embedding dim {dim} is not divisible by {heads} attention heads")
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.transformer = block == "transformer"
        self.norm_attention = nn.LayerNorm(dim) if self.transformer else None
        hidden = int(round(dim * ffn_ratio))
        if self.transformer and hidden > 0:
            self.norm_ffn = nn.LayerNorm(dim)
            self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        else:
            self.norm_ffn = self.ffn = None

    def _single_token_attention(self, x: torch.Tensor) -> torch.Tensor:
        # Attention over one token: softmax = 1, output = out_proj(v_proj(x)). Same weights as the
        # temporal path, without computing the unused queries and keys.
        dim = x.shape[-1]
        value = nn.functional.linear(x, self.attention.in_proj_weight[2 * dim :], self.attention.in_proj_bias[2 * dim :])
        return self.attention.out_proj(value)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, padding: torch.Tensor | None) -> torch.Tensor:
        h = self.norm_attention(x) if self.norm_attention is not None else x
        if x.dim() == 2:
            x = x + self._single_token_attention(h)
        else:
            x = x + self.attention(h, h, h, attn_mask=attn_mask, key_padding_mask=padding, need_weights=False)[0]
        if self.ffn is not None:
            x = x + self.ffn(self.norm_ffn(x))
        return x


class OutputProjection(nn.Module):
    """y -> mean + (y - mean) P after it is fitted (the identity before), or y -> (y - mean) P when it ``centre``s: P
    the orthogonal projection onto the eigen-directions of the AAM's output covariance over the training store's
    train clips whose eigenvalue is at least ``floor`` x the mean eigenvalue, at most the ``rank`` largest of them
    when a rank is given (the identity at floor 0 without a rank), mean their output mean.

    Why the floor: a budget whose dependence measure whitens with a shrunk covariance (``independence``) cannot see
    output directions scaled below its shrinkage, so the AAM can lower the term by scaling attribute directions down
    instead of removing them, and an attacker on whitened inputs reads them back (docs/anonymize.md). With the
    floor at the term's shrinkage, what the term could not see is dropped. Why the centring: the outputs share a
    large common offset, which hides the feature magnitudes MGFN-style anomaly detection ranks clips by. The
    buffers live in the AAM's weights (``aam.safetensors``, whose hash the exports record)."""

    def __init__(self, dim: int, centre: bool):
        super().__init__()
        self.centre = centre
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("projection", torch.eye(dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        if centre:  # in the weights, so that their hash (the exports' anonymizer identity) tells the two maps apart
            self.register_buffer("centred", torch.ones((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            return x
        centred = (x - self.mean) @ self.projection
        return centred if self.centre else self.mean + centred

    def fit(self, mean: torch.Tensor, covariance: torch.Tensor, floor: float, rank: int = 0) -> int:
        """Fit to the output mean and covariance (float64), keeping at most the ``rank`` largest of the directions
        above the floor (0: no cap); returns the number of directions kept."""
        dim = len(self.mean)
        kept = torch.eye(dim, dtype=torch.float64)
        if floor > 0 or rank > 0:
            eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())  # ascending
            chosen = (eigenvalues >= floor * eigenvalues.mean().clamp_min(0) if floor > 0
                      else torch.ones(dim, dtype=torch.bool, device=eigenvalues.device))
            if rank > 0:
                chosen &= torch.arange(dim, device=eigenvalues.device) >= dim - rank
            kept = eigenvectors[:, chosen]
        self.mean.copy_(mean)
        self.projection.copy_(kept @ kept.T)
        self.fitted.fill_(True)
        return int(kept.shape[1])

    def reset(self) -> None:
        """Back to the identity (training goes on)."""
        self.mean.zero_()
        self.projection.copy_(torch.eye(len(self.mean)))
        self.fitted.fill_(False)


def output_projection(config: AAMConfig, dim: int) -> OutputProjection | None:
    return (OutputProjection(dim, config.output_centre)
            if config.output_floor > 0 or config.output_rank > 0 or config.output_centre else None)


class AttentionAAM(nn.Module):
    def __init__(self, dim: int, config: AAMConfig):
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(AttentionBlock(dim, config.heads, config.block, config.ffn_ratio)
                                    for _ in range(config.layers))
        self.output_projection = output_projection(config, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 3 and self.config.mode == "clip":
            return self.forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        attn_mask = None
        if x.dim() == 3:
            length = x.shape[1]
            positions = torch.arange(length, device=x.device)
            blocked = (positions[None, :] - positions[:, None]).abs() > self.config.window  # True = blocked
            if mask is not None:
                # Padding is never a key; every position keeps itself as a key so that a padded query
                # with no real neighbour gets a finite (ignored) output instead of NaN.
                blocked = blocked[None] | ~mask[:, None, :].bool()
                blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=x.device)[None]
                attn_mask = blocked.repeat_interleave(self.config.heads, dim=0)
            else:
                attn_mask = blocked
        for block in self.blocks:
            x = block(x, attn_mask, None)
        return x if self.output_projection is None else self.output_projection(x)


class MLPAAM(nn.Module):
    def __init__(self, dim: int, config: AAMConfig):
        super().__init__()
        self.config = config
        self.layers = nn.Sequential(*(nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.BatchNorm1d(dim),
                                                    nn.Dropout(config.dropout)) for _ in range(config.layers)))
        self.output_projection = output_projection(config, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.layers(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return out if self.output_projection is None else self.output_projection(out)


def build_aam(dim: int, config: AAMConfig) -> nn.Module:
    return AttentionAAM(dim, config) if config.architecture == "attention" else MLPAAM(dim, config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_report(dim: int, config: AAMConfig, n_classes: int) -> dict[str, int]:
    """Trainable parameters of the AAM and a linear action head for an embedding dim (no data needed)."""
    aam = build_aam(dim, config)
    head = nn.Linear(dim, n_classes)
    report = {"aam": count_parameters(aam), "action_head": count_parameters(head)}
    if config.architecture == "attention":
        # In the clip mode the query/key projections never receive a gradient (one-token attention).
        report["aam_unused_in_clip_mode"] = 2 * dim * dim * config.layers + 2 * dim * config.layers
    report["total"] = report["aam"] + report["action_head"]
    return report
