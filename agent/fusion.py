"""Fuse tool evidence (and a model's own probability) into one ``p_ai``.

The fusion is a log-odds sum read from a versioned JSON file that ships in the package
(``weights/``). The default file (``lr-v6``) has two parts:

- **provenance rules** (:class:`ProvenanceRules`), set by reasoning about what can be
  forged, not fitted: a declared AI origin adds ``declared_ai``; a validly signed C2PA
  capture manifest adds ``signed_capture``; a capture claimed only by forgeable means
  (camera EXIF, XMP, a manifest that does not validate) adds ``unsigned_capture`` and only
  when the rest of the evidence already puts ``p_ai`` below the abstain band, so a forged
  camera EXIF can make a "real" verdict firmer but never creates one;
- **a pixel model** fitted by ``sleuth train-fusion`` (a logistic model on pixel
  statistics that keep their meaning after crops, resizes and re-encodes, and one
  one-sided size feature that can only raise ``p_ai``), scaled by a temperature and
  capped on each side (``cap``: towards AI, towards real): without provenance, ``p_ai``
  moves away from 0.5 only as far as leave-one-source-out predictions supported on every
  track.

**Calibrated tools** (plugins wrapping a learned detector) declare that their score is a
probability of AI generation (:class:`sleuth.tools.Calibration`); the first scored finding
of such a tool on the whole image adds ``clip(weight * logit(score), -cap, cap)``
(:mod:`sleuth.agent.detectors`). The weight is the declared one unless the coefficients
file holds one fitted by ``sleuth train-fusion`` (``plugins``); the cap is always the
declared one. Which tools are calibrated comes from the registry
(``registry.calibrations()``), so without such a plugin nothing here changes.

Per-feature terms are summed per evidence item, so every verdict can cite how much each
finding moved it. Older files (a logistic model over every feature, or the hand-set
``fusion-hand-v1.json``) still load.

Applying a coefficients file needs only the standard library: no scikit-learn at run time.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sleuth.agent.context import AgentContext
from sleuth.agent.detectors import detector_terms
from sleuth.agent.features import (
    DERIVED_FROM,
    METRIC_FEATURES,
    PROVENANCE_FEATURES,
    FeatureVector,
    extract_features,
)
from sleuth.agent.verdict import Evidence
from sleuth.tools.base import Calibration

DEFAULT_WEIGHTS = "fusion-lr-v6.json"


@dataclass(frozen=True, kw_only=True)
class ProvenanceRules:
    """Log-odds that declarations in the file add, by how hard they are to forge.

    Attributes
    ----------
    declared_ai : float
        A declared AI origin (C2PA or IPTC source type, generator metadata, watermark).
        Strong: forging one only makes a real image look fake, and the investigator sees
        the declaration in the provenance card. +4 is odds of 55 to 1.
    signed_capture : float
        A C2PA manifest whose signature validates and that declares a capture (a camera
        or a secure-capture app): the only strong evidence of a real capture.
    unsigned_capture : float
        A capture claimed by camera EXIF, XMP or a manifest that does not validate. About
        200 bytes forge it, so it is weak (-0.4 moves 0.30 to 0.22) and counts only when
        the rest of the evidence is already below the abstain band.
    """

    declared_ai: float = 4.0
    signed_capture: float = -3.0
    unsigned_capture: float = -0.4

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProvenanceRules:
        """Build from the ``provenance`` object of a coefficients file."""
        return cls(**{k: float(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, float]:
        """Return the rules as a coefficients file stores them."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class LogisticModel:
    """A standardised, Platt-calibrated logistic model over named features.

    ``p = sigmoid(slope * (intercept + sum_j coef_j * (x_j - mean_j) / scale_j) + offset)``;
    a missing feature takes its training mean (a zero term).

    Attributes
    ----------
    feature_set : str
        Version of the feature definitions the model fits.
    features : tuple of str
    means, scales, coefficients : tuple of float
        Per feature, in the order of ``features``.
    intercept : float
    calibration_slope, calibration_offset : float
        Platt scaling of the decision value.
    cap_ai, cap_real : float, optional
        The calibrated log-odds are clipped to ``[-cap_real, cap_ai]`` (each term scaled
        down by the same factor, so contributions still add up): the confidence held-out
        sources supported on each side.
    """

    feature_set: str
    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float
    calibration_slope: float = 1.0
    calibration_offset: float = 0.0
    cap_ai: float | None = None
    cap_real: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        """Build from the ``model`` object of a coefficients file."""
        rows = data["features"]
        return cls(
            feature_set=str(data["feature_set"]),
            features=tuple(str(r["name"]) for r in rows),
            means=tuple(float(r["mean"]) for r in rows),
            scales=tuple(float(r["scale"]) for r in rows),
            coefficients=tuple(float(r["coefficient"]) for r in rows),
            intercept=float(data["intercept"]),
            calibration_slope=float(data["calibration"]["slope"]),
            calibration_offset=float(data["calibration"]["offset"]),
            **_caps(data.get("cap")),
        )

    @property
    def bias(self) -> float:
        """The calibrated log-odds of an image whose features all sit at their means."""
        return self.calibration_slope * self.intercept + self.calibration_offset

    def terms(self, values: Mapping[str, float]) -> dict[str, float]:
        """Return each feature's calibrated log-odds term (0 for missing features)."""
        out = {}
        for name, mean, scale, coef in zip(
            self.features, self.means, self.scales, self.coefficients, strict=True
        ):
            x = values.get(name, math.nan)
            z = 0.0 if math.isnan(x) else (x - mean) / scale
            out[name] = self.calibration_slope * coef * z
        if self.cap_ai is not None and self.cap_real is not None:
            total = sum(out.values())
            target = min(max(self.bias + total, -self.cap_real), self.cap_ai)
            if total and target != self.bias + total:
                factor = min(max((target - self.bias) / total, 0.0), 1.0)
                out = {name: term * factor for name, term in out.items()}
        return out


def _caps(cap: Mapping[str, Any] | None) -> dict[str, float]:
    """Read a file's ``cap`` (``{"ai": ..., "real": ...}``; older files have none)."""
    if cap is None:
        return {}
    return {"cap_ai": float(cap["ai"]), "cap_real": float(cap["real"])}


@dataclass(frozen=True, kw_only=True)
class FusionWeights:
    """Coefficients of the log-odds fusion.

    Attributes
    ----------
    version : str
        Recorded in every verdict.
    model : LogisticModel, optional
        The fitted model; when set it replaces the per-tool weights below.
    provenance : ProvenanceRules, optional
        When set, provenance counts through these rules (and not through the model).
    bias : float
        Prior log-odds (hand-set files).
    weights : dict of str to float
        Per tool; tools not listed get ``default_weight`` (hand-set files).
    default_weight : float
    regional_factor : float
        Multiplier for findings of tools re-run on a region (hand-set files).
    model_weight : float
        Weight of a model's own log-odds.
    score_clip : float
        Scores are clipped to ``[score_clip, 1 - score_clip]`` before the logit.
    temperature : float
        The summed log-odds are divided by it (calibration).
    plugins : dict of str to float
        Weights of calibrated tools fitted by ``sleuth train-fusion``, by tool name (the
        file's ``plugins`` object, ``{"name": {"weight": w, ...}}``); each replaces the
        tool's declared :attr:`~sleuth.tools.Calibration.weight`.
    """

    version: str
    model: LogisticModel | None = None
    provenance: ProvenanceRules | None = None
    bias: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    default_weight: float = 0.3
    regional_factor: float = 0.5
    model_weight: float = 1.0
    score_clip: float = 0.02
    temperature: float = 1.0
    plugins: dict[str, float] = field(default_factory=dict)

    @classmethod
    @functools.cache
    def load(cls, name: str = DEFAULT_WEIGHTS) -> FusionWeights:
        """Load a packaged coefficients file."""
        text = resources.files("sleuth.agent").joinpath("weights", name).read_text("utf-8")
        return cls.from_dict(json.loads(text))

    def scored_tools(self, calibrated: Iterable[str] = ()) -> frozenset[str] | None:
        """Return the tools whose whole-image findings can move :func:`fuse`, or None for all.

        With a fitted model: the tools of the features it weighs (non-zero coefficient),
        ``provenance`` when provenance rules are set, and the ``calibrated`` tools. Findings
        of any other tool add nothing, so a caller that only needs ``p_ai`` (the stability
        check on copies) can skip them. Hand-set weights count every tool: None.

        Parameters
        ----------
        calibrated : iterable of str
            Names of the registry's calibrated tools.

        Returns
        -------
        frozenset of str or None
        """
        if self.model is None:
            return None
        pairs = zip(self.model.features, self.model.coefficients, strict=True)
        weighed = {name for name, coefficient in pairs if coefficient != 0.0}
        tools = {f.tool for f in METRIC_FEATURES if f.name in weighed}
        tools |= {DERIVED_FROM[n] for n in weighed if n in DERIVED_FROM}
        if self.provenance is not None or weighed & set(PROVENANCE_FEATURES):
            tools.add("provenance")
        return frozenset(tools | set(calibrated))

    @staticmethod
    def save(document: Mapping[str, Any], path: Path) -> None:
        """Write a coefficients file (stable key order, one trailing newline).

        The document is read back with :meth:`from_dict` first, so a file this writes is
        one the fusion can load.
        """
        FusionWeights.from_dict(document)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionWeights:
        """Build from a coefficients file's JSON object (documentation keys are ignored)."""
        known = {
            "bias",
            "weights",
            "default_weight",
            "regional_factor",
            "model_weight",
            "score_clip",
            "temperature",
        }
        kwargs = {k: v for k, v in data.items() if k in known}
        model = LogisticModel.from_dict(data["model"]) if "model" in data else None
        rules = data.get("provenance")
        provenance = ProvenanceRules.from_dict(rules) if rules is not None else None
        return cls(
            version=str(data["version"]),
            model=model,
            provenance=provenance,
            plugins=_plugin_weights(data.get("plugins", {})),
            **kwargs,
        )


def _plugin_weights(entries: Mapping[str, Any]) -> dict[str, float]:
    """Read a file's ``plugins`` object: a weight >= 0 per calibrated tool."""
    out = {}
    for name, entry in entries.items():
        weight = float(entry["weight"])
        if not (math.isfinite(weight) and weight >= 0.0):
            raise ValueError(f"plugins.{name}.weight must be a number >= 0, not {weight!r}")
        out[str(name)] = weight
    return out


def logit(p: float, clip: float = 1e-6) -> float:
    """Return ``log(p / (1 - p))`` with ``p`` clipped to ``[clip, 1 - clip]``."""
    p = min(max(p, clip), 1.0 - clip)
    return math.log(p / (1.0 - p))


def sigmoid(z: float) -> float:
    """Return ``1 / (1 + exp(-z))`` without overflow."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def contributions(
    evidence: Iterable[Evidence],
    weights: FusionWeights,
    *,
    band: tuple[float, float] | None = None,
    calibrated: Mapping[str, Calibration] | None = None,
) -> dict[str, float]:
    """Return each evidence item's log-odds contribution, by evidence id.

    With a fitted model: the calibrated terms of the features each whole-image item
    supplied, summed per item (regional re-runs are not features and contribute
    nothing), then the calibrated tools' terms (:mod:`sleuth.agent.detectors`), then the
    provenance rules' terms when the file has them. With hand-set weights: per tool and
    per scope only the strongest finding counts; neutral findings and findings without
    a score contribute nothing; calibrated tools count by their own rule instead.

    Parameters
    ----------
    evidence : iterable of Evidence
    weights : FusionWeights
    band : tuple of float, optional
        The abstain band, for the rule on unsigned capture claims; the default
        :class:`~sleuth.agent.context.AgentContext`'s when None.
    calibrated : mapping of str to Calibration, optional
        The calibrated tools of the registry the evidence came from
        (``registry.calibrations()``); none when None.
    """
    items = list(evidence)
    calibrated = calibrated or {}
    if weights.model is not None:
        vector = extract_features(items)
        out = _model_contributions(items, vector, weights.model)
        _add_detectors(items, calibrated, weights, out)
        if weights.provenance is not None:
            bias = weights.model.bias
            band = band or AgentContext().band
            _add_provenance(items, vector, weights.provenance, out, bias, band)
        return out
    best: dict[tuple[str, bool], tuple[str, float]] = {}
    for item in items:
        if item.score is None or item.direction == "neutral" or item.tool in calibrated:
            continue
        weight = weights.weights.get(item.tool, weights.default_weight)
        regional = item.region is not None
        if regional:
            weight *= weights.regional_factor
        value = weight * logit(item.score, weights.score_clip)
        key = (item.tool, regional)
        if key not in best or abs(value) > abs(best[key][1]):
            best[key] = (item.id, value)
    out = dict(best.values())
    _add_detectors(items, calibrated, weights, out)
    return out


def _add_detectors(
    items: list[Evidence],
    calibrated: Mapping[str, Calibration],
    weights: FusionWeights,
    out: dict[str, float],
) -> None:
    """Add the calibrated tools' terms to ``out`` (see :mod:`sleuth.agent.detectors`)."""
    for found in detector_terms(items, calibrated, weights.plugins):
        out[found.id] = out.get(found.id, 0.0) + found.term


def _model_contributions(
    items: list[Evidence], vector: FeatureVector, model: LogisticModel
) -> dict[str, float]:
    terms = model.terms(vector.values)
    out: dict[str, float] = {}
    for name, index in vector.sources.items():
        key = items[index].id
        out[key] = out.get(key, 0.0) + terms.get(name, 0.0)
    return out


def _add_provenance(
    items: list[Evidence],
    vector: FeatureVector,
    rules: ProvenanceRules,
    out: dict[str, float],
    bias: float,
    band: tuple[float, float],
) -> None:
    """Add the provenance rules' terms to ``out`` (see :class:`ProvenanceRules`)."""

    def add(flag: str, term: float) -> None:
        if vector.values.get(flag) == 1.0 and term:
            key = items[vector.sources[flag]].id
            out[key] = out.get(key, 0.0) + term

    add("provenance_ai", rules.declared_ai)
    add("provenance_signed_capture", rules.signed_capture)
    if sigmoid(bias + sum(out.values())) < band[0]:
        add("provenance_unsigned_capture", rules.unsigned_capture)


def fuse(
    evidence: Iterable[Evidence],
    *,
    p_model: float | None = None,
    weights: FusionWeights | None = None,
    band: tuple[float, float] | None = None,
    calibrated: Mapping[str, Calibration] | None = None,
) -> float:
    """Return the fused probability that the image is AI-generated.

    Parameters
    ----------
    evidence : iterable of Evidence
        Findings so far.
    p_model : float, optional
        A model's own probability, added with ``model_weight``.
    weights : FusionWeights, optional
        Defaults to the packaged file.
    band : tuple of float, optional
        The abstain band (see :func:`contributions`).
    calibrated : mapping of str to Calibration, optional
        The registry's calibrated tools (see :func:`contributions`).

    Returns
    -------
    float
        ``sigmoid((bias + sum of contributions + model term) / temperature)``, where a
        fitted model supplies its own calibrated bias.
    """
    weights = weights or FusionWeights.load()
    bias = weights.model.bias if weights.model is not None else weights.bias
    z = bias + sum(contributions(evidence, weights, band=band, calibrated=calibrated).values())
    if p_model is not None:
        z += weights.model_weight * logit(p_model, weights.score_clip)
    return sigmoid(z / weights.temperature)
