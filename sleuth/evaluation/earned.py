"""Fit the earned-confidence fusion: provenance rules beside a shrunk, capped pixel model.

The fusion that :mod:`sleuth.agent.fusion` applies has two parts (see its docstring):

- **provenance rules**, not fitted: a declared AI origin and a validly signed capture
  manifest are strong; an unsigned capture claim (camera EXIF, XMP) is weak and may only
  strengthen a verdict that already says "real";
- **a pixel model** fitted here: a class-balanced L2 logistic regression on pixel
  statistics that keep their meaning after the web's crops, resizes and re-encodes, plus
  one one-sided size feature (a generator's frame on a losslessly stored file, which can
  only raise ``p_ai``). Its decision is scaled by a temperature and capped, towards AI
  and towards real separately, at the confidence that leave-one-source-out predictions
  support on every track.

Everything data-driven is chosen inside the training rows: which features keep their
sign on every track (:func:`stable_features`), the L2 strength (by inner
leave-one-source-out log-loss), the temperature and the cap (from inner
leave-one-source-out decisions). :func:`leave_one_source_out` repeats the whole
procedure with each source held out, so its figures never saw the source they score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sleuth.agent.context import AgentContext
from sleuth.agent.features import FEATURE_SET
from sleuth.agent.fusion import ProvenanceRules
from sleuth.evaluation.features import TRACKS
from sleuth.evaluation.metrics import Scores, auroc
from sleuth.evaluation.training import (
    TrainingData,
    fit_temperature,
    require_sklearn,
    sigmoid,
    source_splits,
    worst_track_loss,
)

ONE_SIDED = ("size_generator_lossless",)
"""Features that may only raise ``p_ai``: their term is measured from 0 (absent) and
their coefficient is kept at 0 or above."""
ONE_SIDED_MAX = 1.0
"""Most log-odds a one-sided (size) feature may add, after the temperature: weak
evidence (a likelihood ratio of e = 2.7). Cropping one pixel removes it, so it must never
be what separates an "AI-generated" verdict from a "real" one: with the abstain band
0.35-0.65 (log-odds -0.62 to 0.62), losing 1.0 moves a verdict at most into the band."""
PIXEL_CANDIDATES = (
    "noise_sigma",
    "noise_sigma_p90",
    "noise_npr",
    "noise_npr_deviation",
    "spectrum_prominence",
    "spectrum_period_8",
    "spectrum_period_2",
    "ela_mean",
    "ela_p99",
    "texture_poor",
    "texture_rich",
    "texture_contrast",
    "texture_poor_smooth",
    "texture_rich_smooth",
    "colour_saturation",
    "colour_saturation_p95",
    "colour_saturated",
    "colour_clipped_high",
    "colour_clipped_low",
    "colour_chroma_detail",
)
"""Pixel statistics the model may use; :func:`stable_features` keeps those that point the
same way on every track. JPEG-table features are left out: a re-encode rewrites them."""
C_GRID = (0.01, 0.03, 0.1)
"""L2 strengths compared by inner leave-one-source-out log-loss."""
MIN_SEPARATION = 0.04
"""A feature is kept when its AUROC differs from 0.5 by at least this on every track,
in the same direction."""
CAP_LEVELS = tuple(round(q, 2) for q in np.arange(0.60, 0.975, 0.025))
"""Confidence levels the pixel model's cap is chosen from."""
CAP_MIN_ROWS = 30
"""A cap level must be reached by at least this many held-out rows to be trusted."""


@dataclass(frozen=True)
class PixelModel:
    """The fitted pixel part of the fusion, in the coefficients-file form.

    ``z = clip(slope * (intercept + sum_j coef_j * (x_j - mean_j) / scale_j),
    -cap_real, cap_ai)``; one-sided features have ``mean_j = 0`` and ``coef_j >= 0``; NaN
    takes the mean.
    """

    features: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    intercept: float
    slope: float
    cap_ai: float
    cap_real: float
    c: float

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Return the calibrated, capped log-odds of the pixel evidence."""
        z = np.where(np.isnan(x), 0.0, (x - self.means) / self.scales)
        decision = self.slope * (self.intercept + z @ self.coefficients)
        return np.clip(decision, -self.cap_real, self.cap_ai)


def stable_features(
    data: TrainingData, candidates: Sequence[str], *, min_separation: float = MIN_SEPARATION
) -> list[str]:
    """Return the candidates whose AUROC sits on the same side of 0.5 on every track.

    Each feature's AUROC is measured on each track's rows where it is present; a feature
    is kept when all of them differ from 0.5 by ``min_separation`` or more, in the same
    direction, so that what it says does not flip after a crop, resize or re-encode.
    """
    kept = []
    for name in candidates:
        j = data.features.index(name)
        sides = []
        for track in TRACKS:
            rows = (data.tracks == track) & ~np.isnan(data.x[:, j])
            if rows.sum() < 10:
                continue
            sides.append(auroc(data.y[rows], data.x[rows, j]) - 0.5)
        if sides and (
            all(s >= min_separation for s in sides) or all(s <= -min_separation for s in sides)
        ):
            kept.append(name)
    return kept


def _fit_core(
    data: TrainingData, features: Sequence[str], c: float
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, float]:
    """Fit the logistic model; one-sided features measured from 0 with a coefficient >= 0.

    Returns the features used (a one-sided feature whose fitted coefficient comes out
    negative is dropped and the model refitted), means, scales, coefficients, intercept.
    """
    from sklearn.linear_model import LogisticRegression

    columns = [data.features.index(f) for f in features]
    x = data.x[:, columns]
    one_sided = np.isin(features, ONE_SIDED)
    means = np.nanmean(x, axis=0) if len(x) else np.zeros(len(features))
    means = np.where(np.isnan(means), 0.0, means)
    filled = np.where(np.isnan(x), means, x)
    scales = filled.std(axis=0)
    scales = np.where(scales < 1e-9, 1.0, scales)
    means = np.where(one_sided, 0.0, means)
    filled = np.where(np.isnan(x), means, x)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit((filled - means) / scales, data.y)
    coef = model.coef_[0].copy()
    if (coef[one_sided] < 0).any():  # refit without a one-sided feature that points the other way
        keep = [f for f, w, o in zip(features, coef, one_sided, strict=True) if not (o and w < 0)]
        return _fit_core(data, keep, c)
    return list(features), means, scales, coef, float(model.intercept_[0])


def _subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    return TrainingData(
        data.x[rows], data.y[rows], data.groups[rows], data.tracks[rows], data.features
    )


def _choose(data: TrainingData, candidates: Sequence[str]) -> list[str]:
    """Return the one-sided candidates, then the others that are stable on ``data``."""
    one_sided = [f for f in candidates if f in ONE_SIDED]
    return one_sided + stable_features(data, [f for f in candidates if f not in ONE_SIDED])


def _raw_decisions(data: TrainingData, candidates: Sequence[str], c: float) -> np.ndarray:
    """Out-of-fold decisions (leave one source out) of the uncalibrated model."""
    out = np.zeros(len(data.y))
    for train, test in source_splits(data.y, data.groups):
        inner = _subset(data, train)
        used, means, scales, coef, intercept = _fit_core(inner, _choose(inner, candidates), c)
        cols = [data.features.index(f) for f in used]
        x = data.x[np.ix_(test, cols)]
        z = np.where(np.isnan(x), 0.0, (x - means) / scales)
        out[test] = intercept + z @ coef
    return out


def choose_caps(y: np.ndarray, z: np.ndarray, tracks: np.ndarray) -> tuple[float, float]:
    """Return the log-odds caps, towards AI and towards real, that held-out data support.

    For each side, the highest level ``q`` in :data:`CAP_LEVELS` such that, on every
    track with at least :data:`CAP_MIN_ROWS` held-out rows called on that side at
    confidence ``q`` or more, at least a share ``q`` of them are right (and at least one
    track has that many); returned as ``log(q / (1 - q))``. A side where no level
    qualifies gets the lowest level, which lies inside the abstain band: the pixel model
    then never makes a call on that side by itself.

    Returns
    -------
    tuple of float
        ``(cap towards AI, cap towards real)``, both positive.
    """
    p = sigmoid(z)
    caps = []
    for side in (1, 0):
        called_side = (p > 0.5) if side else (p < 0.5)
        confidence = p if side else 1.0 - p
        supported = CAP_LEVELS[0]
        for q in CAP_LEVELS:
            votes = []
            for track in np.unique(tracks):
                called = called_side & (confidence >= q) & (tracks == track)
                if called.sum() >= CAP_MIN_ROWS:
                    votes.append((y[called] == side).mean() >= q)
            if votes and all(votes):
                supported = q
        caps.append(float(np.log(supported / (1.0 - supported))))
    return caps[0], caps[1]


def fit_pixel_model(
    data: TrainingData,
    *,
    candidates: Sequence[str] = PIXEL_CANDIDATES + ONE_SIDED,
    c_grid: Sequence[float] = C_GRID,
) -> PixelModel:
    """Fit the pixel model with every choice made by inner leave-one-source-out.

    For each L2 strength in ``c_grid`` the out-of-fold decisions are computed (feature
    selection redone in each inner fold); the strength whose tempered decisions have the
    lowest worst-track class-balanced log-loss wins. The temperature (Platt's slope
    alone, minimising the worst track's loss) and the caps are fitted on the winner's
    out-of-fold decisions; the model itself on all rows.
    """
    require_sklearn()
    best: tuple[float, float, float, np.ndarray] | None = None
    for c in c_grid:
        z = _raw_decisions(data, candidates, c)
        slope = fit_temperature(z, data.y, data.tracks)
        loss = worst_track_loss(data.y, sigmoid(slope * z), data.tracks)
        if best is None or loss < best[0] - 1e-9:
            best = (loss, c, slope, z)
    assert best is not None
    _, c, slope, z = best
    cap_ai, cap_real = choose_caps(data.y, slope * z, data.tracks)
    used, means, scales, coef, intercept = _fit_core(data, _choose(data, candidates), c)
    limit = ONE_SIDED_MAX * scales / max(slope, 1e-9)  # coefficient giving the most allowed
    coef = np.where(np.isin(used, ONE_SIDED), np.minimum(coef, limit), coef)
    return PixelModel(
        features=tuple(used),
        means=means,
        scales=scales,
        coefficients=coef,
        intercept=intercept,
        slope=slope,
        cap_ai=cap_ai,
        cap_real=cap_real,
        c=c,
    )


def provenance_decision(
    data: TrainingData, z_pixel: np.ndarray, rules: ProvenanceRules, band: tuple[float, float]
) -> np.ndarray:
    """Add the provenance rules to pixel log-odds, row by row (as the agent does)."""

    def flag(name: str) -> np.ndarray:
        if name not in data.features:
            return np.zeros(len(z_pixel), bool)
        return np.nan_to_num(data.x[:, data.features.index(name)]) == 1.0

    z = z_pixel + np.where(flag("provenance_ai"), rules.declared_ai, 0.0)
    z = z + np.where(flag("provenance_signed_capture"), rules.signed_capture, 0.0)
    weak = flag("provenance_unsigned_capture") & (sigmoid(z) < band[0])
    return z + np.where(weak, rules.unsigned_capture, 0.0)


def leave_one_source_out(
    data: TrainingData,
    *,
    rules: ProvenanceRules | None = None,
    band: tuple[float, float] | None = None,
    c_grid: Sequence[float] = C_GRID,
    candidates: Sequence[str] = PIXEL_CANDIDATES + ONE_SIDED,
) -> np.ndarray:
    """Return each row's ``p_ai`` from a fusion fitted without the row's source.

    The whole of :func:`fit_pixel_model` (feature selection, L2 strength, temperature
    and cap, each by inner leave-one-source-out) is redone for every held-out source.
    """
    require_sklearn()
    rules = rules or ProvenanceRules()
    band = band or AgentContext().band
    p = np.zeros(len(data.y))
    for train, test in source_splits(data.y, data.groups):
        model = fit_pixel_model(_subset(data, train), candidates=candidates, c_grid=c_grid)
        cols = [data.features.index(f) for f in model.features]
        held = _subset(data, test)
        z = provenance_decision(held, model.decision(data.x[np.ix_(test, cols)]), rules, band)
        p[test] = sigmoid(z)
    return p


def earned_document(
    model: PixelModel,
    *,
    version: str,
    rules: ProvenanceRules,
    loso: dict[str, Scores],
    n_images: int,
    n_groups: int,
    candidates: Sequence[str],
    c_grid: Sequence[float],
) -> dict[str, Any]:
    """Return the JSON object of an earned-fusion coefficients file.

    ``loso`` holds the leave-one-source-out figures of the whole procedure per track.
    """
    rows = [
        {
            "name": name,
            "mean": round(float(m), 6),
            "scale": round(float(s), 6),
            "coefficient": round(float(w), 6),
            **({"one_sided": True} if name in ONE_SIDED else {}),
        }
        for name, m, s, w in zip(
            model.features, model.means, model.scales, model.coefficients, strict=True
        )
    ]
    return {
        "version": version,
        "description": "Provenance rules (not fitted; see sleuth.agent.fusion.ProvenanceRules) "
        "beside a pixel model: class-balanced L2 logistic regression on the pixel "
        "statistics whose AUROC points the same way on the native, laundered and web tracks "
        "of the training rows, plus one-sided size features (measured from 0, coefficient "
        ">= 0), fitted on all three tracks of every image; its decision scaled by a "
        "temperature and capped, on each side, at the confidence that held-out sources "
        "supported on every track. C, the "
        "temperature and the cap are chosen by leave-one-source-out inside the training "
        "rows. loso holds figures where every source was predicted by the whole procedure "
        "run without it.",
        "model": {
            "kind": "logistic",
            "feature_set": FEATURE_SET,
            "features": rows,
            "intercept": round(model.intercept, 6),
            "calibration": {"method": "platt-slope", "slope": round(model.slope, 6), "offset": 0.0},
            "cap": {"ai": round(model.cap_ai, 6), "real": round(model.cap_real, 6)},
        },
        "provenance": rules.as_dict(),
        "model_weight": 1.0,
        "score_clip": 0.02,
        "training": {
            "images": n_images,
            "groups": n_groups,
            "tracks": list(TRACKS),
            "C": model.c,
            "C_grid": list(c_grid),
            "candidates": list(candidates),
        },
        "loso": loso_document(loso),
    }


def loso_document(loso: dict[str, Scores]) -> dict[str, dict[str, float | int]]:
    """Return per-track figures as a coefficients file records them."""
    return {
        track: {
            "auroc": round(s.auroc, 4),
            "ece": round(s.ece, 4),
            "ece_floor": round(s.ece_floor, 4),
            "accuracy": round(s.accuracy, 4),
            "confidently_wrong": round(s.confidently_wrong, 4),
            "coverage_95": round(s.coverage_95, 4),
            "abstain_rate": round(s.abstain_rate, 4),
            "accuracy_decided": round(s.accuracy_decided, 4),
            "n": s.n,
        }
        for track, s in loso.items()
    }
