"""Fit the weight of each calibrated plugin on top of the rest of the fusion.

A calibrated plugin (a tool declared with ``calibrated=Calibration(...)``) adds
``clip(w * logit(score), -cap, cap)`` to the fused log-odds at run time
(:mod:`sleuth.agent.detectors`). Its declared weight takes the score at its
word; ``sleuth train-fusion`` replaces it with one fitted on the labelled set:

- the **offset** is what the rest of the fusion already says about each row: the logit
  of its leave-one-source-out ``p_ai`` (pixel model and provenance rules, fitted without
  the row's source), so the plugin is weighed only for what it adds to them;
- the **weight** is a one-dimensional logistic regression on the plugin's log-odds with
  that offset, the cap applied as at run time and the weight kept in ``[0, 4]``
  (:data:`WEIGHT_MAX`): the value on a 0.01 grid that minimises the worst track's
  class-balanced log-loss, as the pixel model's temperature does. A weight of 0 means the
  score added nothing the rest did not already say; the weight never turns a score
  around (a detector that points the wrong way gets 0, not a negative weight);
- several plugins are fitted one after the other, in the registry's order, each on top
  of the offset and the terms of the ones before it;
- rows where the plugin gave no score add nothing, as at run time.

:func:`leave_one_source_out` repeats the fit with each source held out, so the figures
written into the coefficients file with plugins are held out as the others are (the
offsets themselves are leave-one-source-out predictions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sleuth.evaluation.features import plugin_column
from sleuth.evaluation.training import (
    TrainingData,
    sigmoid,
    source_splits,
    worst_track_loss,
)
from sleuth.tools.base import Calibration

WEIGHT_MAX = 4.0
"""Largest weight the fit considers: beyond it the capped term is a step at score 0.5."""
WEIGHT_STEP = 0.01
"""Resolution of the weight."""
MIN_SCORED = 20
"""Rows with a score a plugin needs before its weight is fitted (else it is left out
of the file and its declared weight applies)."""


def plugin_terms(scores: np.ndarray, *, weight: float, cap: float) -> np.ndarray:
    """Return ``clip(weight * logit(score), -cap, cap)`` per row, 0 where the score is NaN."""
    p = np.clip(np.nan_to_num(scores, nan=0.5), 1e-6, 1.0 - 1e-6)
    return np.where(np.isnan(scores), 0.0, np.clip(weight * np.log(p / (1.0 - p)), -cap, cap))


def fit_weight(
    offset: np.ndarray, scores: np.ndarray, y: np.ndarray, tracks: np.ndarray, *, cap: float
) -> float:
    """Return the weight in ``[0, WEIGHT_MAX]`` minimising the worst track's loss.

    Parameters
    ----------
    offset : ndarray, shape (n,)
        The rest of the fusion's log-odds per row.
    scores : ndarray, shape (n,)
        The plugin's scores (NaN: none).
    y : ndarray, shape (n,)
        1 for AI-generated.
    tracks : ndarray, shape (n,)
        Each row's track.
    cap : float
        The plugin's declared cap, applied as at run time.

    Returns
    -------
    float
        The smallest weight on the grid with the lowest loss (ties go to less weight).
    """
    grid = np.round(np.arange(0.0, WEIGHT_MAX + WEIGHT_STEP / 2, WEIGHT_STEP), 6)
    losses = [
        worst_track_loss(y, sigmoid(offset + plugin_terms(scores, weight=w, cap=cap)), tracks)
        for w in grid
    ]
    return float(grid[int(np.argmin(losses))])


def fit_weights(
    data: TrainingData, offset: np.ndarray, calibrated: Mapping[str, Calibration]
) -> dict[str, float]:
    """Fit each calibrated plugin's weight in turn, on top of ``offset`` and those before.

    A plugin with fewer than :data:`MIN_SCORED` scored rows gets no weight (it is not in
    the result).
    """
    z = offset.astype(float).copy()
    out = {}
    for name, declared in calibrated.items():
        scores = _scores(data, name)
        if int((~np.isnan(scores)).sum()) < MIN_SCORED:
            continue
        weight = fit_weight(z, scores, data.y, data.tracks, cap=declared.cap)
        out[name] = weight
        z = z + plugin_terms(scores, weight=weight, cap=declared.cap)
    return out


def apply_weights(
    data: TrainingData,
    offset: np.ndarray,
    calibrated: Mapping[str, Calibration],
    weights: Mapping[str, float],
) -> np.ndarray:
    """Return ``offset`` plus every fitted plugin's term (the fused log-odds)."""
    z = offset.astype(float).copy()
    for name, weight in weights.items():
        z = z + plugin_terms(_scores(data, name), weight=weight, cap=calibrated[name].cap)
    return z


def leave_one_source_out(
    data: TrainingData, offset: np.ndarray, calibrated: Mapping[str, Calibration]
) -> np.ndarray:
    """Return each row's ``p_ai`` with plugin weights fitted without the row's source."""
    z = offset.astype(float).copy()
    for train, test in source_splits(data.y, data.groups):
        weights = fit_weights(data.take(train), offset[train], calibrated)
        z[test] = apply_weights(data.take(test), offset[test], calibrated, weights)
    return sigmoid(z)


def plugins_document(
    data: TrainingData, calibrated: Mapping[str, Calibration], weights: Mapping[str, float]
) -> dict[str, Any]:
    """Return the coefficients file's ``plugins`` object (read by ``FusionWeights``).

    Only ``weight`` is read back; the rest documents the fit.
    """
    return {
        name: {
            "weight": round(weight, 6),
            "declared_weight": calibrated[name].weight,
            "cap": calibrated[name].cap,
            "calibrated_on": calibrated[name].on,
            "rows_scored": int((~np.isnan(_scores(data, name))).sum()),
            "fit": "1-D logistic regression on the capped log-odds of the score, offset by "
            "the rest of the fusion's leave-one-source-out log-odds; weight in [0, 4] "
            "minimising the worst track's class-balanced log-loss",
        }
        for name, weight in weights.items()
    }


def offsets(p: np.ndarray) -> np.ndarray:
    """Return the log-odds of probabilities (clipped to ``[1e-6, 1 - 1e-6]``)."""
    q = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(q / (1.0 - q))


def _scores(data: TrainingData, name: str) -> np.ndarray:
    column = plugin_column(name)
    if column not in data.features:
        return np.full(len(data.y), np.nan)
    return data.x[:, data.features.index(column)]
