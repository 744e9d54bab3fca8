"""``sleuth eval`` on a small folder: results, report, and a corrupt file as an error row."""

import json

from typer.testing import CliRunner

from sleuth.cli import app
from tests.conftest import encode, photo


def test_eval_writes_rows_and_a_report_and_survives_a_corrupt_image(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    for label, seeds in (("real", (1, 2)), ("fake", (3, 4))):
        folder = tmp_path / "set" / label / "src"
        folder.mkdir(parents=True)
        for seed in seeds:
            fmt = "JPEG" if label == "real" else "PNG"
            (folder / f"{seed}.{fmt.lower()}").write_bytes(encode(photo(seed, (320, 256)), fmt))
    (tmp_path / "set" / "real" / "src" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(tmp_path / "set"),
            "--track",
            "both",
            "--out",
            str(out),
            "--localisation",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and {r["track"] for r in rows} == {"native", "laundered"}
    errors = [r for r in rows if "error" in r]
    assert {r["file"] for r in errors} == {"real/src/broken.png"} and len(errors) == 2
    good = [r for r in rows if "error" not in r]
    assert all(0 <= r["p_ai"] <= 1 and r["fusion"] == "lr-v5" for r in good)
    assert all(set(r["features"]) >= {"provenance_ai", "colour_saturation"} for r in good)
    page = (out / "report.html").read_text()
    assert "metadata rule" in page and "spectral detector" in page and "Localisation" in page
    assert "broken.png" in page


def test_eval_rejects_a_bad_track(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--track", "sideways"])
    assert result.exit_code != 0


def test_train_fusion_selects_tools_and_single_features_and_refuses_unknown_ones(tmp_path):
    from sleuth.evaluation.run import select_features

    chosen = select_features(["noise_npr_deviation", "provenance", "dimensions"])
    assert chosen[:2] == ["provenance_ai", "provenance_real"]
    assert "noise_npr_deviation" in chosen and "noise_sigma" not in chosen
    assert "size_square" in chosen and len(chosen) == 7
    result = CliRunner().invoke(
        app, ["train-fusion", str(tmp_path), "--features", "colour,noise_npr_deviaton"]
    )
    assert result.exit_code == 2
    assert "noise_npr_deviaton" in result.output and not (tmp_path / "fusion-lr.json").exists()
