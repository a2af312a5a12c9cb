"""The loss terms of Eq. 7: L = w_T * L_utility - w_B * L_budget + w_LC * L_LC (utility terms: utility.py)."""

from __future__ import annotations

import math

import torch
from torch import nn

LC_DISTANCES = ("mse", "l1", "l2")


def nt_xent(first: torch.Tensor, second: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR NT-Xent over 2N embeddings: row i of ``first`` and row i of ``second`` are positives,
    every other of the 2N - 2 rows is a negative; cosine similarity / temperature; mean over all 2N
    anchors. This is the budget loss that the anonymizer *maximizes*.
    """
    z = nn.functional.normalize(torch.cat([first, second]), dim=-1)
    n = first.shape[0]
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return nn.functional.cross_entropy(logits, positives)


def nt_xent_to_uniform(first: torch.Tensor, second: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Squared distance of a batch-centred NT-Xent from its uniform value log(2N - 1) (beyond the paper).

    Maximizing plain NT-Xent has two optima that keep the information: a common offset makes every
    cosine similarity ~1 (NT-Xent -> log(2N - 1)) and anti-aligning the two clips of a video pushes
    NT-Xent above log(2N - 1), which requires knowing which clips belong together. Centring the batch
    removes the first; aiming at log(2N - 1) (positives no more similar than negatives) removes the
    second. Minimized by the anonymizer.
    """
    both = torch.cat([first, second])
    both = both - both.mean(0, keepdim=True)
    n = first.shape[0]
    uniform = torch.log(torch.tensor(2.0 * n - 1.0, device=first.device))
    return (nt_xent(both[:n], both[n:], temperature) - uniform) ** 2


def latent_consistency(anonymized: torch.Tensor, raw: torch.Tensor, distance: str = "mse") -> torch.Tensor:
    """Distance between f_A(z) and z: ``mse`` (authors' code), ``l1``, or ``l2`` (mean Euclidean norm, paper)."""
    if distance == "mse":
        return nn.functional.mse_loss(anonymized, raw)
    if distance == "l1":
        return nn.functional.l1_loss(anonymized, raw)
    if distance == "l2":
        return (anonymized - raw).norm(dim=-1).mean()
    raise ValueError(f"distance must be one of {LC_DISTANCES}, got {distance!r}")


def within_video_consistency(anonymized: tuple[torch.Tensor, torch.Tensor], raw: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """MSE between the anonymized and the raw difference of two clips of the same video (row i of each
    tensor of a pair: one video): f(x_a) - f(x_b) ~ x_a - x_b. What changes within a video (motion, events,
    an anomaly) is kept; what a video's clips share (its appearance) stays free to move."""
    return nn.functional.mse_loss(anonymized[0] - anonymized[1], raw[0] - raw[1])


def attribute_bce(logits: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of attribute logits against 0/1 labels, ignoring unknown (-1) labels."""
    known = attributes >= 0
    if not known.any():
        return logits.sum() * 0.0
    return nn.functional.binary_cross_entropy_with_logits(logits[known], attributes[known].float())


def attribute_confusion(logits: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """BCE of attribute logits against 1/2 for every known label: minimal when the adversary cannot tell.

    The bounded alternative to maximizing the adversary's cross-entropy, which an anonymizer can
    satisfy by making the adversary confidently *wrong* (flipped predictions still leak the attribute).
    """
    known = attributes >= 0
    if not known.any():
        return logits.sum() * 0.0
    return nn.functional.binary_cross_entropy_with_logits(logits[known], torch.full_like(logits[known], 0.5))


def matching_logits(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, N) cosine similarities / temperature: row i scores query i against every key of the batch."""
    return nn.functional.normalize(queries, dim=-1) @ nn.functional.normalize(keys, dim=-1).T / temperature


def info_nce(logits: torch.Tensor) -> torch.Tensor:
    """InfoNCE of (N, N) matching logits whose diagonal holds the true pairs: mean cross-entropy of
    picking key i for query i among the N keys. A critic that matches minimizes it (chance: log N)."""
    return nn.functional.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def info_nce_confusion(logits: torch.Tensor) -> torch.Tensor:
    """KL(uniform || softmax) of each row of (N, N) matching logits, averaged over rows.

    This is the cross-entropy between the critic's softmax over the batch and the uniform
    distribution, minus its minimum log N: 0 exactly when the critic scores every key alike (chance),
    bounded below, and unlike "maximize InfoNCE" it gives no reward for making the critic confidently
    pick a *wrong* key (a wrong but consistent match still reveals which videos belong together).
    """
    n = logits.shape[0]
    return -nn.functional.log_softmax(logits, dim=-1).mean() - math.log(n)


def gaussian_channel_capacity(outputs: torch.Tensor, noise_std: torch.Tensor) -> torch.Tensor:
    """sum_d log(1 + Var_batch(outputs_d) / noise_std_d^2): the capacity (nats) of a channel that adds
    Gaussian noise of std ``noise_std_d`` to each dimension of a Gaussian signal with the batch's
    per-dimension variance (population variance over the N rows of ``outputs`` (N, D)).

    An information-bottleneck penalty: it falls as dimensions lose variance relative to the noise, so
    a downstream reader of outputs + noise can recover at most this many nats per sample.
    """
    variance = outputs.var(dim=0, unbiased=False)
    return torch.log1p(variance / noise_std.square()).sum()
