"""Classification metrics for ``p_ai`` scores: AUROC, ECE, accuracy with abstentions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def auroc(y: Sequence[int], p: Sequence[float]) -> float:
    """Return the area under the ROC curve (the probability a fake outranks a real).

    Ties count one half (the Mann-Whitney statistic). NaN when one class is absent.

    Parameters
    ----------
    y : sequence of int
        1 for fake, 0 for real.
    p : sequence of float
        Scores; higher means more likely fake.

    Returns
    -------
    float

    References
    ----------
    .. [1] Hanley, J. A. and McNeil, B. J. "The meaning and use of the area under a
           receiver operating characteristic (ROC) curve." Radiology 143(1), 1982.
    """
    from scipy.stats import rankdata

    labels = np.asarray(y, dtype=int)
    scores = np.asarray(p, dtype=float)
    n_pos, n_neg = int(labels.sum()), int((1 - labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def expected_calibration_error(y: Sequence[int], p: Sequence[float], *, bins: int = 10) -> float:
    """Return the expected calibration error of ``p`` as a probability of class 1.

    ``sum_b |B_b| / n * |mean(y in B_b) - mean(p in B_b)|`` over ``bins`` equal-width
    bins of ``[0, 1]`` (the last bin closed).

    References
    ----------
    .. [1] Naeini, M. P., Cooper, G. and Hauskrecht, M. "Obtaining well calibrated
           probabilities using Bayesian binning." AAAI 2015.
    """
    labels = np.asarray(y, dtype=float)
    probs = np.asarray(p, dtype=float)
    if labels.size == 0:
        return float("nan")
    index = np.minimum((probs * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() / labels.size * abs(labels[mask].mean() - probs[mask].mean())
    return float(total)


def ece_floor(p: Sequence[float], *, bins: int = 10, draws: int = 200, seed: int = 0) -> float:
    """Return the ECE that perfectly calibrated probabilities ``p`` would still show.

    Labels are drawn from ``p`` itself (each image is fake with probability ``p``) and
    the ECE of ``p`` against them is computed ``draws`` times; the median is returned. On
    a few hundred images this is a few hundredths: an ECE near it cannot be told from
    sampling noise, one well above it is miscalibration.

    Parameters
    ----------
    p : sequence of float
        Probabilities in [0, 1].
    bins : int
        As in :func:`expected_calibration_error`.
    draws : int
        Simulated label sets.
    seed : int
        Seed of the label draws (the result is deterministic).

    Returns
    -------
    float
        NaN for an empty ``p``.
    """
    probs = np.asarray(p, dtype=float)
    if probs.size == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    drawn = rng.random((draws, probs.size)) < probs
    return float(np.median([expected_calibration_error(y, probs, bins=bins) for y in drawn]))


def reliability(
    y: Sequence[int], p: Sequence[float], *, bins: int = 10
) -> list[tuple[float, float, int]]:
    """Return ``(mean p, share of fakes, count)`` per non-empty equal-width bin."""
    labels = np.asarray(y, dtype=float)
    probs = np.asarray(p, dtype=float)
    index = np.minimum((probs * bins).astype(int), bins - 1)
    return [
        (float(probs[index == b].mean()), float(labels[index == b].mean()), int((index == b).sum()))
        for b in range(bins)
        if (index == b).any()
    ]


CONFIDENT = 0.85
"""A probability at least this far to one side (``p >= 0.85`` or ``p <= 0.15``) is a
confident call; a confident call on the wrong side is the worst answer an investigator
can get."""


def confidently_wrong(y: Sequence[int], p: Sequence[float], *, level: float = CONFIDENT) -> float:
    """Return the share of images called confidently and wrongly.

    A real image with ``p >= level`` or an AI image with ``p <= 1 - level``, over all
    images (NaN for none).

    Examples
    --------
    >>> confidently_wrong([0, 0, 1, 1], [0.9, 0.1, 0.1, 0.5])
    0.5
    """
    labels = np.asarray(y, dtype=int)
    probs = np.asarray(p, dtype=float)
    if labels.size == 0:
        return float("nan")
    wrong = ((labels == 0) & (probs >= level)) | ((labels == 1) & (probs <= 1.0 - level))
    return float(wrong.mean())


def risk_coverage(y: Sequence[int], p: Sequence[float]) -> list[tuple[float, float]]:
    """Return the risk-coverage curve as ``(coverage, accuracy)`` points.

    Images are called in order of confidence ``|p - 0.5|``, most confident first; each
    point is a threshold on that confidence (images tied at it are called together):
    the share of images called and the accuracy (at ``p > 0.5``) among them. The curve
    shows what abstaining buys: a trustworthy score keeps accuracy high at low coverage.

    Returns
    -------
    list of (float, float)
        Coverage increasing to 1.0; empty for no images.

    References
    ----------
    .. [1] El-Yaniv, R. and Wiener, Y. "On the foundations of noise-free selective
           classification." JMLR 11, 2010.
    """
    labels = np.asarray(y, dtype=int)
    probs = np.asarray(p, dtype=float)
    if labels.size == 0:
        return []
    confidence = np.abs(probs - 0.5)
    order = np.argsort(-confidence, kind="stable")
    correct = ((probs[order] > 0.5).astype(int) == labels[order]).astype(float)
    hits = np.cumsum(correct)
    ranked = confidence[order]
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # last index of a tie
    return [(float((k + 1) / labels.size), float(hits[k] / (k + 1))) for k in ends]


def coverage_at(y: Sequence[int], p: Sequence[float], *, accuracy: float = 0.95) -> float:
    """Return the largest share of images that can be called at ``accuracy`` or better.

    The highest coverage on :func:`risk_coverage` whose accuracy reaches ``accuracy``
    (0 when even the most confident images fall short; NaN for none).

    Examples
    --------
    >>> coverage_at([1, 1, 0, 0], [0.99, 0.9, 0.2, 0.6], accuracy=0.95)
    0.75
    """
    curve = risk_coverage(y, p)
    if not curve:
        return float("nan")
    return float(max((c for c, a in curve if a >= accuracy), default=0.0))


@dataclass(frozen=True)
class Scores:
    """Every figure of one method on one track.

    Attributes
    ----------
    n : int
        Images scored (error rows excluded).
    accuracy : float
        At ``p > 0.5``, every image counted.
    balanced_accuracy : float
        Mean of the per-class recalls at ``p > 0.5``.
    auroc, ece : float
    ece_floor : float
        The ECE perfectly calibrated probabilities would show on these images (see
        :func:`ece_floor`).
    abstain_rate : float
        Share of images inside the abstain band.
    accuracy_decided : float
        Accuracy on the images outside the band (NaN when all abstain).
    confusion : tuple of int
        ``(true real, false fake, false real, true fake)`` at ``p > 0.5``.
    confidently_wrong : float
        Share called confidently and wrongly (see :func:`confidently_wrong`).
    coverage_95 : float
        Share of images that can be called at 95% accuracy (see :func:`coverage_at`).
    """

    n: int
    accuracy: float
    balanced_accuracy: float
    auroc: float
    ece: float
    ece_floor: float
    abstain_rate: float
    accuracy_decided: float
    confusion: tuple[int, int, int, int]
    confidently_wrong: float = float("nan")
    coverage_95: float = float("nan")


def score(
    y: Sequence[int], p: Sequence[float], *, band: tuple[float, float] = (0.35, 0.65)
) -> Scores:
    """Compute :class:`Scores` for labels ``y`` and probabilities ``p``."""
    labels = np.asarray(y, dtype=int)
    probs = np.asarray(p, dtype=float)
    pred = (probs > 0.5).astype(int)
    tn = int(((pred == 0) & (labels == 0)).sum())
    fp = int(((pred == 1) & (labels == 0)).sum())
    fn = int(((pred == 0) & (labels == 1)).sum())
    tp = int(((pred == 1) & (labels == 1)).sum())
    recalls = [tn / (tn + fp) if tn + fp else np.nan, tp / (tp + fn) if tp + fn else np.nan]
    decided = (probs < band[0]) | (probs > band[1])
    return Scores(
        n=int(labels.size),
        accuracy=float((pred == labels).mean()) if labels.size else float("nan"),
        balanced_accuracy=float(np.nanmean(recalls)) if labels.size else float("nan"),
        auroc=auroc(labels, probs),
        ece=expected_calibration_error(labels, probs),
        ece_floor=ece_floor(probs),
        abstain_rate=float(1.0 - decided.mean()) if labels.size else float("nan"),
        accuracy_decided=float((pred[decided] == labels[decided]).mean())
        if decided.any()
        else float("nan"),
        confusion=(tn, fp, fn, tp),
        confidently_wrong=confidently_wrong(labels, probs),
        coverage_95=coverage_at(labels, probs),
    )
