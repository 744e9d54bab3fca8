"""Metrics equal values worked out by hand."""

import math

import pytest

from sleuth.evaluation.metrics import (
    auroc,
    confidently_wrong,
    coverage_at,
    ece_floor,
    expected_calibration_error,
    reliability,
    risk_coverage,
    score,
)


def test_auroc_counts_ordered_pairs():
    # pairs (fake, real): (0.35, 0.1) ok, (0.35, 0.4) wrong, (0.8, *) ok -> 3 of 4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.2, 0.9]) == 1.0 and auroc([0, 1], [0.9, 0.2]) == 0.0


def test_auroc_counts_ties_as_half_and_needs_both_classes():
    assert auroc([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert auroc([0, 1, 1], [0.3, 0.3, 0.9]) == pytest.approx(0.75)
    assert math.isnan(auroc([1, 1], [0.2, 0.4]))


def test_ece_weighs_each_bin_gap_by_its_share():
    # bin [0.2, 0.3): one real at 0.25 -> gap 0.25, share 1/4
    # bin [0.7, 0.8): three fakes at 0.75 -> gap 0.25, share 3/4
    assert expected_calibration_error([0, 1, 1, 1], [0.25, 0.75, 0.75, 0.75]) == pytest.approx(0.25)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
    assert expected_calibration_error([1, 0], [0.0, 1.0]) == pytest.approx(1.0)


def test_reliability_bins_and_probability_one_falls_in_the_last_bin():
    bins = reliability([0, 1, 1], [0.05, 0.95, 1.0])
    assert bins == [(0.05, 0.0, 1), (pytest.approx(0.975), 1.0, 2)]


def test_score_reports_confusion_and_abstentions():
    s = score([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], band=(0.35, 0.65))
    assert s.confusion == (1, 1, 1, 1)  # 0.5 is not > 0.5: called real
    assert s.accuracy == 0.5 and s.balanced_accuracy == 0.5
    assert s.abstain_rate == 0.5 and s.accuracy_decided == 1.0


def test_ece_floor_is_the_noise_of_calibrated_probabilities():
    # certain probabilities draw their own labels: no gap at all
    assert ece_floor([0.0, 1.0, 1.0, 0.0]) == 0.0
    # one bin at 0.5: the gap is |share of fakes - 0.5|, whose median for n draws is
    # about 0.674 * sqrt(0.25 / n): 0.034 for n = 100, 0.0034 for n = 10000
    assert ece_floor([0.5] * 100) == pytest.approx(0.034, abs=0.012)
    assert ece_floor([0.5] * 10_000) == pytest.approx(0.0034, abs=0.0015)
    assert ece_floor([0.3, 0.6] * 50, seed=1) == ece_floor([0.3, 0.6] * 50, seed=1)
    assert math.isnan(ece_floor([]))
    assert score([0, 1], [0.0, 1.0]).ece_floor == 0.0


def test_confidently_wrong_counts_only_confident_calls_on_the_wrong_side():
    y = [0, 0, 0, 1, 1, 1]
    p = [0.85, 0.84, 0.99, 0.15, 0.16, 0.95]  # wrong at 0.85, 0.99 (real) and 0.15 (AI)
    assert confidently_wrong(y, p) == pytest.approx(3 / 6)
    assert confidently_wrong(y, [0.5] * 6) == 0.0
    assert math.isnan(confidently_wrong([], []))


def test_risk_coverage_calls_the_most_confident_first_and_keeps_ties_together():
    y = [1, 0, 1, 0, 1]
    p = [0.99, 0.05, 0.7, 0.7, 0.5]
    # confidences 0.49, 0.45, 0.2, 0.2, 0.0: two right, then a tie of one right and one
    # wrong (0.7 on a real), then 0.5 called real on a fake
    curve = risk_coverage(y, p)
    assert [c for c, _ in curve] == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert [a for _, a in curve] == pytest.approx([1.0, 1.0, 0.75, 0.6])
    assert coverage_at(y, p, accuracy=0.95) == pytest.approx(0.4)
    assert coverage_at(y, p, accuracy=0.7) == pytest.approx(0.8)
    assert coverage_at([1], [0.2], accuracy=0.95) == 0.0
    assert risk_coverage([], []) == [] and math.isnan(coverage_at([], []))


def test_score_reports_the_trust_figures():
    s = score([0, 0, 1, 1], [0.9, 0.2, 0.8, 0.5])
    assert s.confidently_wrong == pytest.approx(0.25)
    assert s.coverage_95 == pytest.approx(0.0)  # the most confident call (0.9) is wrong
