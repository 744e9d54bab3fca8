"""What fitting the fusion needs: the training matrix, folds grouped by source, calibration.

Needs the ``eval`` extra (scikit-learn). The fit itself is :mod:`sleuth.evaluation.earned`;
the coefficients file it writes is applied at run time by :mod:`sleuth.agent.fusion` with
the standard library alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sleuth.agent.features import FEATURE_NAMES
from sleuth.evaluation.features import TRACKS, FeatureRow
from sleuth.evaluation.metrics import Scores, score


def require_sklearn() -> None:
    """Raise a clear ImportError when scikit-learn (the ``eval`` extra) is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError(
            "training the fusion needs scikit-learn: pip install 'sleuth[eval]'"
        ) from None


@dataclass(frozen=True)
class TrainingData:
    """Feature matrix (NaN for missing), labels, groups and tracks of the usable rows."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    tracks: np.ndarray
    features: tuple[str, ...]

    @classmethod
    def from_rows(
        cls, rows: Sequence[FeatureRow], features: Sequence[str] = FEATURE_NAMES
    ) -> TrainingData:
        """Stack rows without errors; the same image's tracks share its group."""
        good = [r for r in rows if r.error is None]
        x = np.array([[r.values.get(f, np.nan) for f in features] for r in good], float)
        return cls(
            x=x.reshape(len(good), len(features)),
            y=np.array([r.y for r in good], int),
            groups=np.array([r.group for r in good]),
            tracks=np.array([r.track for r in good]),
            features=tuple(features),
        )

    def take(self, rows: np.ndarray) -> TrainingData:
        """Return the rows ``rows`` (indices or a mask)."""
        return TrainingData(
            self.x[rows], self.y[rows], self.groups[rows], self.tracks[rows], self.features
        )


def source_splits(y: np.ndarray, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return ``(train, test)`` index pairs that hold out one source (group) at a time."""
    from sklearn.model_selection import LeaveOneGroupOut

    return list(LeaveOneGroupOut().split(np.zeros(len(y)), y, groups))


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Row weights that give both classes the same total weight."""
    counts = np.bincount(y, minlength=2).astype(float)
    return len(y) / (2.0 * np.maximum(counts, 1.0))[y]


def fit_temperature(decision: np.ndarray, y: np.ndarray, tracks: np.ndarray | None = None) -> float:
    """Return the slope ``s`` that makes ``sigmoid(s * decision)`` best calibrated.

    Platt scaling without an offset (a temperature), fitted by class-balanced log-loss on
    held-out decisions: an offset would learn the class mix and the domain shift of the
    sources it was fitted on, which do not carry to the next source. With ``tracks``, the
    slope minimises the worst track's loss instead of the pooled one, so that a track
    where the evidence is strong (native files) cannot buy confidence for one where it is
    weak (web copies).
    """
    from scipy.optimize import minimize_scalar

    def worst(slope: float) -> float:
        return worst_track_loss(y, sigmoid(slope * decision), tracks)

    return float(minimize_scalar(worst, bounds=(0.01, 20.0), method="bounded").x)


def worst_track_loss(y: np.ndarray, p: np.ndarray, tracks: np.ndarray | None = None) -> float:
    """Return the highest class-balanced log-loss of ``p`` over the tracks (all rows: None)."""
    groups = [np.ones(len(y), bool)] if tracks is None else [tracks == t for t in set(tracks)]
    return max(log_loss(y[g], p[g], balanced_weights(y[g])) for g in groups)


def sigmoid(t: np.ndarray) -> np.ndarray:
    """Elementwise ``1 / (1 + exp(-t))``."""
    return 1.0 / (1.0 + np.exp(-t))


def log_loss(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean log-loss of probabilities ``p`` (clipped to ``[1e-6, 1 - 1e-6]``)."""
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    losses = -(y * np.log(p) + (1 - y) * np.log(1.0 - p))
    return float((weights * losses).sum() / weights.sum())


def scores_by_track(data: TrainingData, p: np.ndarray) -> dict[str, Scores]:
    """Score probabilities per track (and on all tracks together as ``all``)."""
    out = {t: score(data.y[data.tracks == t], p[data.tracks == t]) for t in TRACKS}
    out["all"] = score(data.y, p)
    return {k: v for k, v in out.items() if v.n}
