"""Fit the fusion: a calibrated logistic model with cross-validation grouped by source.

Needs the ``eval`` extra (scikit-learn). The coefficients file it writes is applied at
run time by :mod:`sleuth.agent.fusion` with the standard library alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.agent.features import FEATURE_NAMES, FEATURE_SET, PROVENANCE_FEATURES
from sleuth.evaluation.features import TRACKS, FeatureRow
from sleuth.evaluation.metrics import Scores, score

DEFAULT_C = 0.1
"""Inverse L2 strength: strong shrinkage, because the set is small and groups are few."""
FOLDS = 5
PROVENANCE_SCALE = 0.05
"""Provenance flags are divided by this instead of their spread: their coefficients then
pay (spread / 0.05)**2, about 40x, less L2 penalty. A declared origin is decisive when
present, and shrinkage tuned for weak pixel statistics would otherwise cap it."""


def _require_sklearn() -> None:
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


CALIBRATIONS = ("identity", "platt", "platt-slope")
"""What may follow the logistic model: nothing, Platt scaling (slope and offset), or its
slope alone (a temperature). ``auto`` picks one by nested cross-validation."""


@dataclass(frozen=True)
class FittedFusion:
    """A fitted model in the coefficients-file form, and its cross-validated figures."""

    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    intercept: float
    slope: float
    offset: float
    features: tuple[str, ...]
    calibration: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for a feature matrix (NaN -> the mean)."""
        decision = _decision(x, self.means, self.scales, self.coefficients, self.intercept)
        return _sigmoid(self.slope * decision + self.offset)


def _fit_linear(
    x: np.ndarray, y: np.ndarray, features: Sequence[str], *, c: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    means = np.nanmean(x, axis=0)
    means = np.where(np.isnan(means), 0.0, means)
    filled = np.where(np.isnan(x), means, x)
    scales = filled.std(axis=0)
    scales = np.where(scales < 1e-9, 1.0, scales)
    scales = np.where(np.isin(features, PROVENANCE_FEATURES), PROVENANCE_SCALE, scales)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    model.fit((filled - means) / scales, y)
    return means, scales, model.coef_[0], float(model.intercept_[0])


def _splits(y: np.ndarray, groups: np.ndarray, *, folds: int, seed: int) -> list[tuple]:
    from sklearn.model_selection import StratifiedGroupKFold

    n = min(folds, len(set(groups)))
    cv = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y, groups))


def _decision(x: np.ndarray, means, scales, coef, intercept) -> np.ndarray:
    z = np.where(np.isnan(x), 0.0, (x - means) / scales)
    return intercept + z @ coef


def _balanced_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=2).astype(float)
    return len(y) / (2.0 * np.maximum(counts, 1.0))[y]


def _calibrate(method: str, decision: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return ``(slope, offset)`` of a calibration fitted on out-of-fold decisions.

    Class-balanced like the model: the calibration must not learn the class mix of the
    rows it is fitted on (folds grouped by source hold 29% to 67% fakes here, and a prior
    learnt there moves every held-out score).
    """
    from scipy.optimize import minimize_scalar
    from sklearn.linear_model import LogisticRegression

    if method == "identity":
        return 1.0, 0.0
    if method == "platt":
        model = LogisticRegression(C=1e6, class_weight="balanced", max_iter=5000)
        model.fit(decision.reshape(-1, 1), y)
        return float(model.coef_[0, 0]), float(model.intercept_[0])
    if method == "platt-slope":
        weights = _balanced_weights(y)
        best = minimize_scalar(
            lambda slope: _log_loss(y, _sigmoid(slope * decision), weights),
            bounds=(0.01, 20.0),
            method="bounded",
        )
        return float(best.x), 0.0
    raise ValueError(f"unknown calibration {method!r}; use auto or one of {CALIBRATIONS}")


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-t))


def _log_loss(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1.0 - 1e-6)
    losses = -(y * np.log(p) + (1 - y) * np.log(1.0 - p))
    return float((weights * losses).sum() / weights.sum())


def choose_calibration(decision: np.ndarray, y: np.ndarray, fold: np.ndarray) -> str:
    """Pick the calibration whose cross-fitted probabilities have the lowest log-loss.

    Each candidate is fitted on the out-of-fold decisions of the other folds and applied
    to this fold's, so that Platt scaling is not judged on the rows it was fitted on; the
    loss is class-balanced. Ties go to the simpler method (earlier in
    :data:`CALIBRATIONS`).

    Parameters
    ----------
    decision : ndarray
        Out-of-fold decision values of the logistic model.
    y : ndarray of int
        Labels.
    fold : ndarray of int
        The fold each row was held out in.

    Returns
    -------
    str
        One of :data:`CALIBRATIONS`.
    """
    weights = _balanced_weights(y)
    losses = {}
    for method in CALIBRATIONS:
        p = np.zeros(len(y))
        for k in np.unique(fold):
            slope, offset = _calibrate(method, decision[fold != k], y[fold != k])
            p[fold == k] = _sigmoid(slope * decision[fold == k] + offset)
        losses[method] = _log_loss(y, p, weights)
    return min(CALIBRATIONS, key=lambda m: (round(losses[m], 9), CALIBRATIONS.index(m)))


def fit_fusion(
    data: TrainingData,
    *,
    c: float = DEFAULT_C,
    folds: int = FOLDS,
    seed: int = 0,
    calibration: str = "auto",
) -> FittedFusion:
    """Fit the logistic model on all rows and calibrate it on out-of-fold decisions.

    The calibration is fitted on decision values predicted for each fold by a model that
    did not see that fold's groups, so it is not fitted on training scores. With
    ``calibration="auto"`` the method is chosen by :func:`choose_calibration` on those
    decisions. Model and calibration are class-balanced: the probabilities assume equal
    priors, whatever the mix of the training rows.
    """
    _require_sklearn()
    oof = np.zeros(len(data.y))
    fold = np.zeros(len(data.y), int)
    for k, (train, test) in enumerate(_splits(data.y, data.groups, folds=folds, seed=seed)):
        params = _fit_linear(data.x[train], data.y[train], data.features, c=c, seed=seed)
        oof[test] = _decision(data.x[test], *params)
        fold[test] = k
    method = choose_calibration(oof, data.y, fold) if calibration == "auto" else calibration
    slope, offset = _calibrate(method, oof, data.y)
    means, scales, coef, intercept = _fit_linear(data.x, data.y, data.features, c=c, seed=seed)
    return FittedFusion(
        means, scales, coef, intercept, slope, offset, data.features, calibration=method
    )


def cross_validate(
    data: TrainingData,
    *,
    c: float = DEFAULT_C,
    folds: int = FOLDS,
    seed: int = 0,
    calibration: str = "auto",
) -> np.ndarray:
    """Return out-of-fold calibrated probabilities, folds grouped by ``source_repo``.

    Each outer fold is predicted by :func:`fit_fusion` run on the other folds alone
    (model, calibration and the choice of calibration), so no figure derived from it
    has seen its groups.
    """
    _require_sklearn()
    p = np.zeros(len(data.y))
    for train, test in _splits(data.y, data.groups, folds=folds, seed=seed):
        inner = TrainingData(
            data.x[train], data.y[train], data.groups[train], data.tracks[train], data.features
        )
        fitted = fit_fusion(inner, c=c, folds=folds, seed=seed, calibration=calibration)
        p[test] = fitted.predict(data.x[test])
    return p


def repeated_cross_validate(
    data: TrainingData,
    *,
    repeats: int = 5,
    c: float = DEFAULT_C,
    folds: int = FOLDS,
    seed: int = 0,
    calibration: str = "auto",
) -> list[tuple[int, np.ndarray]]:
    """Run :func:`cross_validate` over ``repeats`` distinct fold assignments.

    Seeds are tried from ``seed`` upwards; a seed whose folds repeat an earlier seed's
    (grouping by a few sources leaves few ways to split them) is skipped, so no split is
    counted twice. One split's ECE on a few hundred images moves by about 0.01 with the
    split alone; the spread over distinct splits shows how much.

    Returns
    -------
    list of (int, ndarray)
        The seed and its out-of-fold probabilities, ``seed``'s own first; fewer than
        ``repeats`` when 20 seeds per repeat give no more distinct splits.
    """
    runs: list[tuple[int, np.ndarray]] = []
    seen: set[frozenset[tuple[int, ...]]] = set()
    for candidate in range(seed, seed + 20 * max(repeats, 1)):
        if len(runs) == repeats:
            break
        splits = _splits(data.y, data.groups, folds=folds, seed=candidate)
        partition = frozenset(tuple(test) for _, test in splits)  # in whatever fold order
        if partition in seen:
            continue
        seen.add(partition)
        p = cross_validate(data, c=c, folds=folds, seed=candidate, calibration=calibration)
        runs.append((candidate, p))
    return runs


def spread_by_track(data: TrainingData, runs: Sequence[tuple[int, np.ndarray]]) -> dict[str, Any]:
    """Summarise repeated CV per track: mean, min and max of AUROC and ECE, and the seeds."""
    scores = [scores_by_track(data, p) for _, p in runs]
    out: dict[str, Any] = {}
    for track in scores[0] if scores else ():
        entry: dict[str, Any] = {"seeds": [seed for seed, _ in runs]}
        for metric in ("auroc", "ece"):
            values = [getattr(s[track], metric) for s in scores]
            entry[metric] = {
                "mean": round(float(np.mean(values)), 4),
                "min": round(float(np.min(values)), 4),
                "max": round(float(np.max(values)), 4),
            }
        out[track] = entry
    return out


def scores_by_track(data: TrainingData, p: np.ndarray) -> dict[str, Scores]:
    """Score probabilities per track (and on both tracks together as ``all``)."""
    out = {t: score(data.y[data.tracks == t], p[data.tracks == t]) for t in TRACKS}
    out["all"] = score(data.y, p)
    return {k: v for k, v in out.items() if v.n}


def coefficients_document(
    fitted: FittedFusion,
    *,
    version: str,
    cv: dict[str, Scores],
    n_images: int,
    n_groups: int,
    c: float,
    seed: int,
    cv_repeated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the JSON object of a coefficients file (see ``agent/weights``).

    ``cv`` holds the figures of ``seed``'s fold assignment; ``cv_repeated``, when given
    (from :func:`spread_by_track`), their spread over several distinct assignments.
    """
    rows = [
        {
            "name": name,
            "mean": round(float(m), 6),
            "scale": round(float(s), 6),
            "coefficient": round(float(w), 6),
        }
        for name, m, s, w in zip(
            fitted.features, fitted.means, fitted.scales, fitted.coefficients, strict=True
        )
    ]
    return {
        "version": version,
        "description": "Logistic regression on the survey's feature vector (standardised; "
        "missing features take the mean), class-balanced, L2 with C as given, fitted on the "
        "native and laundered copies of every image. Calibration (identity, Platt, or Platt's "
        "slope alone; class-balanced) fitted on out-of-fold decisions, the method chosen by "
        "the lowest cross-fitted log-loss there. cv holds out-of-fold figures from "
        "cross-validation grouped by source_repo (model, calibration and its choice redone "
        "inside each fold); cv_repeated, when present, their mean and range over distinct "
        "fold assignments (the seeds listed).",
        "model": {
            "kind": "logistic",
            "feature_set": FEATURE_SET,
            "features": rows,
            "intercept": round(fitted.intercept, 6),
            "calibration": {
                "method": fitted.calibration,
                "slope": round(fitted.slope, 6),
                "offset": round(fitted.offset, 6),
            },
        },
        "model_weight": 1.0,
        "score_clip": 0.02,
        "training": {
            "images": n_images,
            "groups": n_groups,
            "folds": FOLDS,
            "C": c,
            "seed": seed,
        },
        "cv": {
            track: {
                "auroc": round(s.auroc, 4),
                "ece": round(s.ece, 4),
                "ece_floor": round(s.ece_floor, 4),
                "accuracy": round(s.accuracy, 4),
                "n": s.n,
            }
            for track, s in cv.items()
        },
        **({"cv_repeated": cv_repeated} if cv_repeated else {}),
    }


def write_coefficients(document: dict[str, Any], path: Path) -> None:
    """Write a coefficients file (stable key order, one trailing newline)."""
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
