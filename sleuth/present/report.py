"""The case report: one self-contained HTML file with the verdict, the evidence and the trace.

Everything a case holds is untrusted text (metadata read from the image reaches evidence
summaries and metrics), so every value is escaped with :func:`html.escape` where it is
written, nothing from the case is ever emitted as markup, and the page forbids scripts and
outside requests with its Content-Security-Policy. Images are embedded as data URLs.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from PIL import Image

from sleuth import __version__
from sleuth.agent.verdict import Answer, Case, Evidence, Step, Verdict
from sleuth.agent.weighing import UNRECORDED, Effect, effect, effects, ranked, recorded
from sleuth.present.annotate import annotate
from sleuth.tools import Box, LoadedImage

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)
PHOTO_MAX_SIDE = 1600
PHOTO_QUALITY = 85
ARTIFACT_MAX_SIDE = 1024
ARTIFACT_MAX_BYTES = 2_000_000
STOPPED = {
    "confident": "confident: the threshold was reached",
    "concluded": "concluded: nothing more to examine",
    "budget": "budget: the step budget ran out",
}
CITATION = re.compile(r"\[(E\d+)\]")

CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em}
h1{font-size:1.3em;margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
h3{margin:.2em 0 .4em}table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.label{font-size:1.6em;font-weight:700}.ai_generated .label,.dir-ai{color:#b3261e}
.real .label,.dir-real{color:#1e7b34}.uncertain .label,.interrupted .label{color:#8a6d00}
.dir-none,.dir-unknown{color:#666;font-weight:400}
.text{white-space:pre-wrap}.muted{color:#666}
.photo img{max-width:100%;height:auto;border:1px solid #ccc}
.evidence,.answer{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.artifacts{display:flex;flex-wrap:wrap;gap:12px}.artifacts figure{margin:0;width:260px}
.artifacts img{width:100%;height:auto;image-rendering:pixelated;border:1px solid #ccc}
.missing{color:#b3261e}tr.error td{background:#fdecea}code{font-size:.92em}
"""


def render_report(
    case: Case,
    image: LoadedImage,
    artifact: Callable[[str], Path],
    *,
    link: Callable[[str], str] | None = None,
    photo_max_side: int = PHOTO_MAX_SIDE,
) -> str:
    """Render a stored case as one self-contained HTML page.

    Parameters
    ----------
    case : Case
        The case, with its verdict (or none yet, when interrupted) and follow-up answers.
    image : LoadedImage
        The case's image; drawn with the verdict's numbered regions.
    artifact : callable
        Maps an artifact name to its file, e.g.
        ``lambda name: files.artifact_path(case.case_id, name)``. A name whose file does not
        exist is reported as missing in the page.
    link : callable, optional
        Maps an artifact name to a URL: artifacts are then linked, not embedded, which
        keeps the page small (the MCP resource links ``case://{id}/artifacts/{name}``).
    photo_max_side : int
        Longest side of the annotated photo.

    Returns
    -------
    str
        The HTML document. It has no scripts and requests nothing: styles are inline and
        images are ``data:`` URLs (the photo as JPEG, artifacts as PNG), which its
        Content-Security-Policy enforces.
    """
    verdict = case.verdict
    embed = functools.cache(link or (lambda name: _artifact_url(artifact(name))))
    shown = {e.id for e in verdict.evidence} if verdict else set()
    cited = shown | {e.id for a in case.answers for e in a.evidence}
    weights = recorded(verdict) if verdict else None
    parts = [_header(case, image), _photo(image, verdict, photo_max_side)]
    if verdict is not None:
        order = ranked(verdict.evidence, weights)
        found = effects(order, weights)
        parts += [
            "<h2>Explanation</h2>",
            f'<p class="text">{_cite(verdict.explanation, cited)}</p>',
            f"<h2>Evidence ({len(verdict.evidence)}), by effect on p_ai</h2>",
            *(_evidence(e, found[e.id], verdict.regions, embed) for e in order),
            "<h2>Steps</h2>",
            _steps(verdict.steps),
        ]
    regions = verdict.regions if verdict else []
    if case.answers:
        parts.append("<h2>Follow-up questions</h2>")
    for number, answer in enumerate(case.answers, start=1):
        parts.append(_answer(number, answer, shown, cited, regions, weights, embed))
    if verdict is not None:
        parts += ["<h2>Versions and timings</h2>", _about(verdict)]
    parts.append(
        '<p class="muted">sleuth ' + _e(__version__) + ": a self-contained report; text read "
        "from the image file is shown as data, never as markup.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>sleuth case {_e(case.case_id)}{_e(': ' + case.name if case.name else '')}"
        f"</title>\n<style>{CSS}</style></head>\n"
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _e(value: object) -> str:
    """Escape any value for HTML text and quoted attributes."""
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _box(box: Box | None, regions: list[Box]) -> str:
    if box is None:
        return "whole image"
    name = f"box {regions.index(box) + 1} " if box in regions else ""
    return f"{name}({box.x0}, {box.y0}, {box.x1}, {box.y1})"


def _cite(text: str, known: set[str]) -> str:
    """Escape ``text`` and link each citation ``[E3]`` of known evidence to its entry."""

    def link(match: re.Match[str]) -> str:
        key = match.group(1)
        return f'<a href="#ev-{key}">[{key}]</a>' if key in known else match.group(0)

    return CITATION.sub(link, _e(text))


def _rows(pairs: Iterable[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="facts">{body}</table>'


def _header(case: Case, image: LoadedImage) -> str:
    v = case.verdict
    width, height = image.size
    facts: list[tuple[str, object]] = []
    if v is not None:
        facts += [("p_ai", _num(v.p_ai)), ("p_signals", _num(v.p_signals))]
        if v.p_model is not None:
            facts.append(("p_model", _num(v.p_model)))
        facts += [
            ("abstain band", f"{_num(v.abstain_band[0], 2)} – {_num(v.abstain_band[1], 2)}"),
            ("stopped", STOPPED.get(v.stopped, v.stopped)),
            ("backend", f"{v.backend.provider}:{v.backend.model}"),
        ]
        if v.backend.base_url:
            facts.append(("server", v.backend.base_url))
        if v.backend.fallback_from:
            facts.append(
                ("fallback", f"offline analyst answered; failed: {v.backend.fallback_from}")
            )
    facts += [
        *((("file", case.name),) if case.name else ()),
        ("image", f"{image.format} {width}×{height}, sha256 {case.image_id}"),
        *(("loading", note) for note in image.notes),
    ]
    label = v.label if v else "interrupted (no verdict yet)"
    return (
        f'<header class="{_e(v.label if v else "interrupted")}">'
        f"<h1>sleuth case {_e(case.case_id)}{_e(': ' + case.name if case.name else '')}</h1>"
        f'<p class="label">{_e(label)}</p>{_rows(facts)}</header>'
    )


def _photo(image: LoadedImage, verdict: Verdict | None, max_side: int) -> str:
    regions = verdict.regions if verdict else []
    drawn = annotate(
        image.full,
        regions,
        evidence_boxes=verdict.boxes if verdict else [],
        max_side=max_side,
    )
    buffer = io.BytesIO()
    drawn.save(buffer, format="JPEG", quality=PHOTO_QUALITY)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    items = "".join(f"<li>{_e(_box(b, regions))}</li>" for b in regions)
    legend = (
        f"<p class='muted'>Amber, numbered: the {len(regions)} region(s) of interest (box 1 is "
        "the strongest). Cyan: where the evidence for the label lies.</p>"
        + (f"<ol class='regions'>{items}</ol>" if items else "")
    )
    return (
        f'<figure class="photo"><img src="{url}" alt="the image with its regions">{legend}</figure>'
    )


def _artifact_url(path: Path) -> str | None:
    """Return a PNG data URL for an artifact file, or None when the file does not exist.

    An unreadable file raises ``OSError``.
    """
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(small_png(path)).decode("ascii")


def small_png(path: Path) -> bytes:
    """Return an artifact file as PNG of at most :data:`ARTIFACT_MAX_SIDE` pixels a side.

    Small PNGs come as they are; others are decoded, shrunk and re-encoded (at most
    :data:`ARTIFACT_MAX_BYTES` is passed through unchanged). An unreadable file raises
    ``OSError``.
    """
    raw = path.read_bytes()
    with Image.open(io.BytesIO(raw)) as im:
        small = max(im.size) <= ARTIFACT_MAX_SIDE and len(raw) <= ARTIFACT_MAX_BYTES
        if im.format != "PNG" or not small:
            im.thumbnail((ARTIFACT_MAX_SIDE, ARTIFACT_MAX_SIDE))
            buffer = io.BytesIO()
            im.convert("L" if im.mode in {"L", "1"} else "RGB").save(buffer, "PNG")
            raw = buffer.getvalue()
    return raw


def _figure(name: str, embed: Callable[[str], str | None]) -> str:
    """Return an artifact as a figure, or its name marked missing or unreadable.

    A ``data:`` URL is shown; any other URL is linked.
    """
    try:
        url = embed(name)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        logger.warning("artifact %s is unreadable: %s", name, err)
        url = ""  # unreadable, as opposed to None: missing
    if not url:
        problem = "missing" if url is None else "unreadable"
        return (
            f'<figure><figcaption>{_e(name)} <b class="missing">{problem}</b></figcaption></figure>'
        )
    if not url.startswith("data:"):
        return f'<figure><figcaption><a href="{_e(url)}">{_e(name)}</a></figcaption></figure>'
    return f'<figure><img src="{url}" alt="{_e(name)}"><figcaption>{_e(name)}</figcaption></figure>'


def _metric(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _evidence(
    e: Evidence, weighed: Effect, regions: list[Box], embed: Callable[[str], str | None]
) -> str:
    facts = [
        ("effect on p_ai", weighed.words),
        (
            "log-odds contribution",
            "—" if weighed.contribution is None else f"{weighed.contribution:+.3f}",
        ),
        ("region", _box(e.region, regions)),
        ("tool's own score", _num(e.score)),
        ("kind", e.kind),
        ("step", e.step),
    ]
    if e.boxes:
        facts.append(("boxes", "; ".join(_box(b, []) for b in e.boxes)))
    parts = [
        f'<article class="evidence" id="ev-{_e(e.id)}">',
        f"<h3>{_e(e.id)} · {_e(e.tool)} ",
        f"<b class='dir-{_e(weighed.towards)}'>{_e(weighed.words)}</b></h3>",
        f'<p class="text">{_e(e.summary)}</p>',
        _rows(facts),
    ]
    if e.caveats:
        parts.append(
            "<ul class='caveats'>" + "".join(f"<li>{_e(c)}</li>" for c in e.caveats) + "</ul>"
        )
    if e.metrics:
        rows = "".join(
            f"<tr><td>{_e(k)}</td><td class='num'>{_e(_metric(v))}</td></tr>"
            for k, v in e.metrics.items()
        )
        parts.append(f"<table class='metrics'><tr><th>metric</th><th>value</th></tr>{rows}</table>")
    if e.artifacts:
        parts.append(
            '<div class="artifacts">' + "".join(_figure(n, embed) for n in e.artifacts) + "</div>"
        )
    parts.append("</article>")
    return "\n".join(parts)


def _steps(steps: list[Step]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("#", "kind", "tool", "arguments", "result", "seconds"))
    rows = []
    for s in steps:
        arguments = json.dumps(s.arguments, sort_keys=True, default=str) if s.arguments else ""
        rows.append(
            f'<tr class="{"error" if s.error else "ok"}"><td class="num">{s.index}</td>'
            f"<td>{_e(s.kind)}</td><td>{_e(s.tool or '')}</td><td><code>{_e(arguments)}</code></td>"
            f"<td>{_e(s.result)}</td><td class='num'>{s.seconds:.3f}</td></tr>"
        )
    return f'<table class="steps"><tr>{head}</tr>{"".join(rows)}</table>'


def _answer(
    number: int,
    answer: Answer,
    shown: set[str],
    cited: set[str],
    regions: list[Box],
    weights: Mapping[str, float] | None,
    embed: Callable[[str], str | None],
) -> str:
    backend = f"{answer.backend.provider}:{answer.backend.model}"
    parts = [
        f'<article class="answer"><h3>Q{number}: {_e(answer.question)}</h3>',
        f'<p class="text">{_cite(answer.answer, cited)}</p>',
        f'<p class="muted">answered by {_e(backend)}'
        + ("; the question was not understood" if not answer.understood else "")
        + "</p>",
    ]
    for e in answer.evidence:
        if e.id not in shown:
            shown.add(e.id)
            found = UNRECORDED if weights is None else effect(weights.get(e.id))
            parts.append(_evidence(e, found, regions, embed))
    parts.append("</article>")
    return "\n".join(parts)


def _about(verdict: Verdict) -> str:
    timings = [(k, f"{v:.3f} s") for k, v in verdict.timings.items()]
    return _rows(sorted(verdict.versions.items())) + _rows(timings)
