"""Backends side by side: several ``--backend`` in one ``sleuth eval``, and ``eval-compare``
of earlier runs; a backend that cannot run stops the evaluation with its name."""

import json
import re
import socket

import pytest
from typer.testing import CliRunner

from sleuth.cli import app
from sleuth.settings import Settings
from tests.agent.test_real_engines import scripted_model  # noqa: F401 (a fixture)
from tests.conftest import encode, photo


def build_set(root, broken=False):
    """Two real JPEGs, two AI PNGs (and an unreadable PNG) under one source folder."""
    for label, seeds in (("real", (1, 2)), ("fake", (3, 4))):
        folder = root / label / "src"
        folder.mkdir(parents=True)
        for seed in seeds:
            fmt = "JPEG" if label == "real" else "PNG"
            (folder / f"{seed}.{fmt.lower()}").write_bytes(encode(photo(seed, (320, 256)), fmt))
    if broken:
        (root / "real" / "src" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot")
    return root


def use_config(monkeypatch, path, text=""):
    path.write_text(text)
    monkeypatch.setenv("SLEUTH_CONFIG", str(path))


def evaluate(*args):
    return CliRunner().invoke(app, ["eval", *map(str, args), "--localisation", "0"])


def read_rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def method_rows(page):
    """(track, method) of each row of the report's methods table."""
    table = page.split("<h2>Methods</h2>", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>", table)


def plain(output):
    """The command's output as one line, without the error panel's borders."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", output).split())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_backends_give_rows_and_report_rows_for_each(tmp_path, monkeypatch):
    use_config(monkeypatch, tmp_path / "none.toml")
    images = build_set(tmp_path / "set", broken=True)
    out = tmp_path / "out"
    backends = ("offline", "offline:second")
    result = evaluate(
        images, "--track", "both", "--backend", backends[0], "--backend", backends[1], "--out", out
    )
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert len(rows) == 2 * 5 * 2  # backends x images x tracks
    for backend in backends:
        mine = [r for r in rows if r["backend"] == backend]
        assert {(r["file"], r["track"]) for r in mine} == {
            (r["file"], r["track"]) for r in rows if r["backend"] == backends[0]
        }
        errors = [r for r in mine if "error" in r]
        assert {r["file"] for r in errors} == {"real/src/broken.png"} and len(errors) == 2
    page = (out / "report.html").read_text()
    methods = method_rows(page)
    for track in ("native", "laundered"):
        named = [m for t, m in methods if t == track]
        assert named[:4] == [
            "analyst (offline)",
            "analyst (offline:second)",
            "metadata rule",
            "spectral detector",
        ]
    assert len([m for _, m in methods if m == "metadata rule"]) == 2  # once per track
    # per source, one row per backend, and each error row names its backend
    source = page.split("native: by source_repo</h3>", 1)[1].split("</table>", 1)[0]
    assert "<th>method</th>" in source
    assert "<td>src</td><td>analyst (offline)</td><td>4</td>" in source
    assert "<td>src</td><td>analyst (offline:second)</td><td>4</td>" in source
    errors = page.split("<h2>Errors</h2>", 1)[1]
    assert "<th>backend</th>" in errors
    for backend in backends:
        assert errors.count(f"<td>real/src/broken.png</td><td>native</td><td>{backend}</td>") == 1


def test_one_backend_keeps_the_single_analyst_row(tmp_path, monkeypatch):
    use_config(monkeypatch, tmp_path / "none.toml")
    out = tmp_path / "out"
    result = evaluate(
        build_set(tmp_path / "set"), "--track", "native", "--limit", "2", "--out", out
    )
    assert result.exit_code == 0, result.output
    assert {r["backend"] for r in read_rows(out)} == {"offline"}
    page = (out / "report.html").read_text()
    assert [m for _, m in method_rows(page)][:3] == [
        "analyst",
        "metadata rule",
        "spectral detector",
    ]
    assert "<th>source_repo</th><th>n</th>" in page and "<th>backend</th>" not in page


def test_eval_compare_puts_earlier_runs_side_by_side(tmp_path, monkeypatch):
    images = build_set(tmp_path / "set")
    runs = []
    for name, config in (("default", ""), ("no-check", "stability_variants = 0\n")):
        use_config(monkeypatch, tmp_path / f"{name}.toml", config)
        runs.append(tmp_path / name)
        result = evaluate(images, "--track", "native", "--out", runs[-1])
        assert result.exit_code == 0, result.output
    older = read_rows(runs[1])
    for row in older:  # a run from before rows named their backend
        del row["backend"]
    (runs[1] / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in older))
    out = tmp_path / "compared"
    result = CliRunner().invoke(app, ["eval-compare", *map(str, runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert len(rows) == 8 and {r["backend"] for r in rows} == {"offline", str(runs[1])}
    page = (out / "report.html").read_text()
    assert [m for _, m in method_rows(page)][:4] == [
        "analyst (offline)",
        f"analyst ({runs[1]})",
        "metadata rule",
        "spectral detector",
    ]
    # the same backend in two runs is told apart by its run
    again = CliRunner().invoke(
        app, ["eval-compare", str(runs[0]), str(out), "--out", str(tmp_path / "x")]
    )
    assert again.exit_code == 0, again.output
    labels = {r["backend"] for r in read_rows(tmp_path / "x")}
    assert labels == {f"offline, {runs[0]}", f"offline, {out}", str(runs[1])}


def test_eval_compare_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "run").mkdir()
    for args, said in (
        ([tmp_path / "run"], "no results.jsonl"),
        ([tmp_path / "missing"], "no results.jsonl"),
    ):
        result = CliRunner().invoke(app, ["eval-compare", *map(str, args), "--out", str(tmp_path)])
        assert result.exit_code == 2 and said in plain(result.output), result.output
    (tmp_path / "run" / "results.jsonl").write_text('{"file": "a.png"}\n')
    result = CliRunner().invoke(
        app, ["eval-compare", str(tmp_path / "run"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "line 1" in plain(result.output), result.output
    result = CliRunner().invoke(
        app, ["eval-compare", str(tmp_path / "run"), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2 and "one of the runs" in plain(result.output), result.output


@pytest.mark.parametrize(
    ("backends", "said"),
    [
        (["offline", "nosuch:model"], "'nosuch:model': unknown provider 'nosuch'"),
        (["offline", "openai"], "'openai' needs a model"),
        (["offline", "offline"], "'offline' is given twice"),
        (["offline", "transformers:no/such/folder"], "'transformers:no/such/folder'"),
        (["openai:tuned", "offline"], "'openai:tuned': cannot reach the model server"),
    ],
)
def test_a_backend_that_cannot_run_stops_the_run_with_its_name(
    tmp_path, monkeypatch, backends, said
):
    use_config(monkeypatch, tmp_path / "none.toml")
    out = tmp_path / "out"
    url = f"http://127.0.0.1:{free_port()}/v1"
    args = [a for b in backends for a in ("--backend", b)]
    result = evaluate(tmp_path, *args, "--base-url", url, "--out", out)
    assert result.exit_code == 2, result.output
    assert said in plain(result.output), result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_a_vision_language_model_beside_the_offline_analyst(
    tmp_path,
    monkeypatch,
    scripted_model,  # noqa: F811
):
    """The scripted tiny model in transformers on two of the cases it learned: its verdicts
    (zoom, then ai_generated) are its own row beside the offline analyst's."""
    from tests.agent.scripted_chats import image, scripted_settings
    from tests.engines.tiny_vlm import MAX_PIXELS

    settings = scripted_settings(Settings(), model_max_pixels=MAX_PIXELS)
    keys = ("tools_enabled", "threshold", "max_steps", "model_family", "model_max_pixels")
    config = "".join(f"{k} = {json.dumps(getattr(settings, k))}\n" for k in keys)
    use_config(monkeypatch, tmp_path / "scripted.toml", config + "model_max_images = 2\n")
    for label, seed in (("fake", 100), ("real", 101)):
        folder = tmp_path / "set" / label / "src"
        folder.mkdir(parents=True)
        (folder / f"{seed}.png").write_bytes(image(seed))
    model = f"transformers:{scripted_model}"
    out = tmp_path / "out"
    result = evaluate(
        tmp_path / "set",
        "--track",
        "native",
        "--backend",
        "offline",
        "--backend",
        model,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    rows = {(r["backend"], r["file"]): r for r in read_rows(out)}
    assert len(rows) == 4 and not [r for r in rows.values() if "error" in r]
    for file in ("fake/src/100.png", "real/src/101.png"):
        assert rows[model, file]["verdict"] == "ai_generated" and rows[model, file]["p_ai"] > 0.9
        assert rows["offline", file]["verdict"] == "uncertain"
        for baseline in ("metadata_rule", "spectral", "features"):
            assert rows[model, file][baseline] == rows["offline", file][baseline]
    methods = method_rows((out / "report.html").read_text())
    assert [m for _, m in methods][:4] == [
        "analyst (offline)",
        f"analyst ({model})",
        "metadata rule",
        "spectral detector",
    ]
