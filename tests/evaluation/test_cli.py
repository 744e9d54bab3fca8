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
            "all",
            "--out",
            str(out),
            "--localisation",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 15 and {r["track"] for r in rows} == {"native", "laundered", "web"}
    errors = [r for r in rows if "error" in r]
    assert {r["file"] for r in errors} == {"real/src/broken.png"} and len(errors) == 3
    good = [r for r in rows if "error" not in r]
    assert all(0 <= r["p_ai"] <= 1 and r["fusion"] == "lr-v6" for r in good)
    web = {r["file"]: r["features"] for r in good if r["track"] == "web"}
    native = {r["file"]: r["features"] for r in good if r["track"] == "native"}
    assert all(web[f]["size_megapixels_log"] != native[f]["size_megapixels_log"] for f in web)
    assert all(set(r["features"]) >= {"provenance_ai", "colour_saturation"} for r in good)
    page = (out / "report.html").read_text()
    assert "metadata rule" in page and "spectral detector" in page and "Localisation" in page
    assert "confidently wrong" in page and "coverage at 95%" in page
    assert "broken.png" in page and (out / "plots-web.png").is_file()


def test_eval_rejects_a_bad_track(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--track", "sideways"])
    assert result.exit_code != 0


def test_train_fusion_selects_candidates_and_refuses_the_rest(tmp_path):
    from sleuth.evaluation.run import select_features

    chosen = select_features(["noise_npr_deviation", "colour", "size_generator_lossless"])
    assert "noise_npr_deviation" in chosen and "noise_sigma" not in chosen
    assert "colour_chroma_detail" in chosen and "size_generator_lossless" in chosen
    for refused in ("provenance_ai", "size_square", "dimensions_typo"):
        try:
            select_features([refused])
        except ValueError as err:
            assert refused in str(err)
        else:
            raise AssertionError(f"{refused} was accepted")
    result = CliRunner().invoke(
        app, ["train-fusion", str(tmp_path), "--features", "colour,noise_npr_deviaton"]
    )
    assert result.exit_code == 2
    assert "noise_npr_deviaton" in result.output and not (tmp_path / "fusion-lr.json").exists()


def test_several_sources_are_read_as_one_set_with_distinct_keys(tmp_path):
    from sleuth.evaluation.sources import read_sources

    for name in ("a", "b"):
        folder = tmp_path / name / "fake" / "src"
        folder.mkdir(parents=True)
        (folder / "1.png").write_bytes(encode(photo(1, (64, 64)), "PNG"))
    samples = read_sources([tmp_path / "a", tmp_path / "b", tmp_path / "a"])
    assert [s.key for s in samples] == ["a/fake/src/1.png", "b/fake/src/1.png"]
