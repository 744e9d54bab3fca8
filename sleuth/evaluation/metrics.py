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
    )
