"""``independence``: make anonymized full clips statistically independent of their video's RAW static clip.

Per step, for the videos of the budget batch, one random full clip per video x_i and a raw static clip
s_i of the same video (one frame tiled to a clip: what a single frame shows, i.e. appearance, skin
tone, clothing, scene; no motion). The privacy term is the kernel dependence between f_A(x) and s over
the batch, measured by centred kernel alignment (normalized HSIC, Gretton et al. 2005; Kornblith et
al. 2019):

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),   HSIC(K, L) = tr(K H L H) / (n - 1)^2

Both batches are first whitened (``whiten``: the batch covariance shrunk by ``independence_shrinkage``
x its mean variance), so the term is, up to the shrinkage, invariant to invertible linear maps of the
output. K is a Gaussian kernel (bandwidth: the batch's median squared distance, detached) and, with
``independence_kernels="gaussian+linear"`` (default), the term is the mean of that and the same
alignment with linear kernels (the normalized squared cross-covariance, what a linear attacker reads).
Why whitened: on per-dimension standardized outputs the anonymizer lowered the term by blowing one
output direction up until the kernels saw nothing else, while the attribute directions underneath stayed
readable by a logistic regression (docs/anonymize.md, "Does it anonymize?"). With fewer rows than
dimensions the whitened kernels saturate along the high-variance directions, and the term then also
rewards a low effective rank of the output (measured and documented there): the biased HSIC estimate of two
independent whitened batches is far from 0 and grows with the output's rank. With
``independence_estimator="unbiased"`` each HSIC is the unbiased estimate (Song et al. 2012), whose expectation is 0
for independent batches whatever their rank, so only dependence counts; the estimate can fall below 0 by chance,
and the anonymizer minimizes the alignment's absolute value (anti-aligned kernels are dependence too). Not with
``independence_given="labels"`` (refused): batches centred per class share a block structure that the estimate
reads as dependence, again growing with the rank.

With ``independence_given="labels"`` the term is conditional on the utility labels: both batches are first
centred per action class (each row minus its class's batch mean; unknown labels, and classes with a single
row in the batch, form one group), so the term
measures what the clip and the frame share beyond what both say about the action. A frame also shows some of
the action (a pose, a size, a place); independence given the label leaves that to the utility task, while the
attributes, which vary within every class, still have to go.

There is no critic to outrun and no attribute label is read (self-supervised). Static clips enter only
raw (``static_inputs = "raw"``), so moving static inputs gains nothing. What the utility tasks need
(motion, for actions) survives because independence from a single frame does not ask the AAM to remove
it; what a frame shows is what it must remove.
"""

from __future__ import annotations

import torch

from anonymize.budgets.base import BudgetContext, BudgetMode, BudgetStep, group_means
from anonymize.budgets.registry import register_budget
from data_manifests.errors import FeatstoreError
from featstore.store import VIDEO_LABELS

INDEPENDENCE_MIN_ROWS = 8  # fewer rows in a batch give no term (a kernel estimate of noise)


def whiten(values: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """The batch centred and whitened with the shrunk covariance S = C + shrinkage * tr(C)/D * I (C its
    covariance): rows -> L^-1 row with S = L L^T, so distances between rows are Mahalanobis distances
    under S, invariant (up to the shrinkage) to any invertible linear map of the features: the anonymizer
    cannot hide information by scaling it down under a dominant direction or by blowing another one up.
    (A Cholesky factor, not an eigendecomposition: its gradient stays finite when eigenvalues coincide.)"""
    centred = values - values.mean(0)
    covariance = centred.T @ centred / max(1, len(values) - 1)
    ridge = shrinkage * covariance.diagonal().mean().clamp_min(1e-12)
    factor, info = torch.linalg.cholesky_ex(covariance + ridge * torch.eye(covariance.shape[0], device=values.device))
    if int(info) != 0:
        raise FeatstoreError("the independence budget could not whiten a batch (non-finite or degenerate AAM "
                             "outputs): lower the learning rate or raise --independence-shrinkage")
    return torch.linalg.solve_triangular(factor, centred.T, upper=False).T


def gaussian_kernel(values: torch.Tensor) -> torch.Tensor:
    """Gaussian kernel matrix of the (whitened) rows, bandwidth = median squared distance (detached)."""
    squared = torch.cdist(values, values).pow(2)
    off_diagonal = ~torch.eye(len(values), dtype=torch.bool, device=values.device)
    bandwidth = squared.detach()[off_diagonal].median().clamp_min(1e-12)
    return torch.exp(-squared / bandwidth)


def hsic(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimate tr(K H L H) / (n - 1)^2 of two kernel matrices."""
    n = first.shape[0]
    centring = torch.eye(n, device=first.device) - 1.0 / n
    return torch.trace(first @ centring @ second @ centring) / (n - 1) ** 2


def hsic_unbiased(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimate of two symmetric kernel matrices (Song et al. 2012, eq. 5), for n >= 4 rows:
    [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)), K~ and L~ the kernels with zero diagonals."""
    n = first.shape[0]
    first = first - torch.diag_embed(first.diagonal())
    second = second - torch.diag_embed(second.diagonal())
    row_sums = second.sum(1)
    return (torch.sum(first * second) + first.sum() * second.sum() / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * first.sum(0) @ row_sums) / (n * (n - 3))


def linear_kernel(values: torch.Tensor) -> torch.Tensor:
    """Linear kernel matrix of the (whitened) rows."""
    return values @ values.T


KERNELS = {"gaussian": gaussian_kernel, "linear": linear_kernel}


def centre_per_group(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Each row minus the mean of the rows of its group (``groups``: (n,) integer ids)."""
    _, index = torch.unique(groups, return_inverse=True)
    return values - group_means(values, index, int(index.max()) + 1)[index]


def kernel_alignment(anonymized: torch.Tensor, raw_static: torch.Tensor, kernel: str, shrinkage: float,
                     estimator: str) -> torch.Tensor:
    """CKA with one kernel between two (n, D) batches, each whitened (``whiten``): 0 = independent (in the
    kernel's sense), 1 = the same information; from the ``estimator`` ("biased", "unbiased") HSIC estimates."""
    first = KERNELS[kernel](whiten(anonymized, shrinkage))
    second = KERNELS[kernel](whiten(raw_static.detach(), shrinkage))
    if estimator == "biased":  # the default's operations as they were measured: its training stays bit-identical
        return hsic(first, second) / torch.sqrt(hsic(first, first) * hsic(second, second)).clamp_min(1e-12)
    # an unbiased self-estimate is >= 0 in exact arithmetic but can round below 0 (small shrinkage, n < D)
    norms = hsic_unbiased(first, first).clamp_min(0) * hsic_unbiased(second, second).clamp_min(0)
    return hsic_unbiased(first, second) / torch.sqrt(norms.clamp_min(1e-24))


def dependence(anonymized: torch.Tensor, raw_static: torch.Tensor, labels: torch.Tensor | None, kernels: str,
               shrinkage: float, estimator: str) -> torch.Tensor:
    """The mean kernel alignment over ``kernels`` ("gaussian+linear"; with the unbiased ``estimator``, of its
    absolute value); given ``labels``, of the batches centred per label."""
    if labels is not None:
        # a class with one row in the batch would centre to zero and drop out: such rows join the unknown group
        _, index, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        labels = torch.where(counts[index] > 1, labels, torch.full_like(labels, -1))
        anonymized, raw_static = centre_per_group(anonymized, labels), centre_per_group(raw_static, labels)
    names = kernels.split("+")
    alignments = [kernel_alignment(anonymized, raw_static, kernel, shrinkage, estimator) for kernel in names]
    return sum(a.abs() if estimator == "unbiased" else a for a in alignments) / len(names)


@register_budget
class IndependenceBudget(BudgetMode):
    name = "independence"
    static_inputs = "raw"
    uses_clips = True

    def __init__(self, context: BudgetContext):
        super().__init__(context)
        if context.config.independence_given == "labels" and not (context.store.array(VIDEO_LABELS)[:] >= 0).any():
            raise FeatstoreError(f"{context.store.path} has no utility labels: independence given labels needs them")

    def privacy_term(self, step: BudgetStep) -> tuple[torch.Tensor, list]:
        clips = step.clips
        # A kernel statistic of a handful of rows is noise: a trailing batch under half the batch size (and
        # any batch under INDEPENDENCE_MIN_ROWS rows) adds no privacy term. A store whose videos all fit in one
        # batch has no trailing batch: its one batch counts whatever its size.
        full_batch = min(self.config.batch_size, self.context.epoch_videos)
        if clips is None or clips.anonymized.shape[0] < max(INDEPENDENCE_MIN_ROWS, full_batch // 2):
            return torch.zeros((), device=self.device), []
        config = self.config
        labels = clips.labels if config.independence_given == "labels" else None
        return dependence(clips.anonymized, clips.raw_static, labels, config.independence_kernels,
                          config.independence_shrinkage, config.independence_estimator), []
