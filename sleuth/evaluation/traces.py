"""Training traces: investigations of a labelled set, written as supervised data.

Each case of the set is investigated by a backend wrapped in a
:class:`~sleuth.agent.backends.recording.RecordingBackend`, which keeps every request as
the model backend composes it for its server (messages with images, tool schemas) and
every answer (tool calls, the verdict JSON). With the offline analyst, no model is
asked: the :class:`~sleuth.agent.backends.teacher.TeacherBackend` composes the requests
a model of the ``render_for`` family would be sent, with the openai backend's own code,
and answers them with the analyst's decisions.

One record per case (a JSON line) holds the conversation, the ground truth and the
outcome::

    {"messages": [...], "tools": [...],          # --format openai
     "requests": [2, 4],             # request k is messages[:n_k]; messages[n_k] answers it
     "id": "fake/0001.png", "label": "fake",      # the set's key and label (real or fake)
     "regions": [[x0, y0, x1, y1]],               # known manipulated regions (composites)
     "size": [width, height],
     "frame": {"units": "input_pixels", "extent": [w, h]},   # the model's box frame
     "outcome": {"label": "ai_generated", "p_ai": 0.91, "correct": true,
                 "boxes": [[...]], "stopped": "confident", "turns": 2},
     "evidence": [{"id": "E1", "tool": "provenance", "direction": "ai",
                   "contribution": 4.0, ...}],    # its log-odds term in p_ai, if any
     "backend": {"provider": "offline", "model": "offline-v1 as qwen2.5-vl"},
     "part": 1, "parts": 1}

Boxes in ``regions``, ``outcome`` and ``evidence`` are in original pixels. Images are
PNG files in ``images/`` beside the JSON lines, named by their SHA-256, exactly the bytes
of the data URL the server would be sent; :func:`inline_images` turns a record's
messages back into the request's.

The conversation is the last request plus its answer, so every request of the case is a
prefix of it (``requests``). When a request is not (the server's image limit replaced an
earlier crop by a note), the case is written as several records (``part`` of ``parts``),
each a chain of requests that is.

``--format trl`` writes the same records in the layout TRL's ``SFTTrainer`` reads for a
vision-language model: ``messages`` with ``{"type": "image"}`` placeholders, an
``images`` column of file paths (relative to the JSON lines' folder) in the order the
placeholders appear, and a ``tools`` column; tool-call arguments are objects and tools
are listed as vLLM's server hands them to the chat template
(:func:`~sleuth.agent.backends.local.normalised_messages`, ``served_tools``), so a
template given the tools renders what the server would have (TRL 1.16's vision collator
does not pass the tools on; ``sleuth train-vlm`` reads this layout and does).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sleuth.agent.backends import BackendOptions, make_backend
from sleuth.agent.backends.recording import RecordingBackend, Turn
from sleuth.agent.backends.teacher import TeacherBackend
from sleuth.agent.backends.vlm import VisionBackend, served_family
from sleuth.agent.cases import CaseFiles
from sleuth.agent.context import AgentContext
from sleuth.agent.frames import DEFAULT_FAMILY
from sleuth.agent.graph import build_graph
from sleuth.agent.verdict import Verdict
from sleuth.evaluation.sources import Sample
from sleuth.tools import Box, LoadedImage, SleuthError, ToolRegistry, load_image
from sleuth.tools.image import ImageLimits

Keep = Literal["all", "correct"]
Format = Literal["openai", "trl"]
KEEP: tuple[Keep, ...] = ("all", "correct")
FORMATS: tuple[Format, ...] = ("openai", "trl")
DEFAULT_RENDER_FOR = DEFAULT_FAMILY
"""The model family whose requests the offline analyst's traces are composed for, by default."""
TRUTH = {"fake": "ai_generated", "real": "real"}
"""The verdict label that is correct for each label of a set."""
TRACES_FILE = "traces.jsonl"
IMAGES_DIR = "images"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class TraceCase:
    """One labelled image to investigate.

    Attributes
    ----------
    key : str
        Its name in the set (``composite/<n>/<host key>`` for a composite).
    label : {'real', 'fake'}
    image : LoadedImage
    regions : tuple of Box
        Known manipulated regions, in original pixels (a composite's pasted box).
    """

    key: str
    label: str
    image: LoadedImage
    regions: tuple[Box, ...] = ()


@dataclass(frozen=True)
class ExportOptions:
    """What to keep and how to write it.

    Attributes
    ----------
    keep : {'correct', 'all'}
        ``correct`` keeps only cases whose verdict label is the truth (rejection
        sampling); an ``uncertain`` verdict is not correct.
    balance : bool
        Keep as many real cases as fake ones (the first of each, in the set's order).
    fmt : {'openai', 'trl'}
        The layout of the records (see the module docstring).
    composites : int
        Composites to add (a real image with a pasted region, labelled fake, the region
        known); see :mod:`sleuth.evaluation.localisation`.
    seed : int
        Chooses the composites.
    """

    keep: Keep = "correct"
    balance: bool = False
    fmt: Format = "openai"
    composites: int = 0
    seed: int = 0


@dataclass
class _Kept:
    index: int
    label: str
    correct: bool
    images: set[str] = field(default_factory=set)


def recording_backend(
    backend: str, options: BackendOptions, render_for: str = DEFAULT_RENDER_FOR
) -> RecordingBackend:
    """Return the backend to export with, recording its requests.

    Parameters
    ----------
    backend : str
        ``offline`` (the analyst, as a teacher) or ``provider:model`` of a model backend.
    options : BackendOptions
        The model backend's options; for the offline analyst, ``family``, ``max_pixels``
        and ``max_images`` shape the requests composed for ``render_for``.
    render_for : str
        The model (or family name) the offline analyst's requests are composed for: its
        family decides the box frame and the picture size.
    """
    if backend.partition(":")[0] == "offline":
        student = VisionBackend(served_family(render_for, options), max_images=options.max_images)
        return RecordingBackend(TeacherBackend(student))
    inner = make_backend(backend, options)
    if not callable(getattr(inner, "chat", None)):
        raise SleuthError(f"the {backend} backend composes no chat requests to record")
    return RecordingBackend(inner)  # type: ignore[arg-type]


def trace_cases(
    samples: Sequence[Sample],
    *,
    composites: int = 0,
    seed: int = 0,
    limits: ImageLimits | None = None,
    skipped: list[str] | None = None,
) -> Iterator[TraceCase]:
    """Yield the set's images, then ``composites`` composites made from it.

    Unreadable images are skipped (their keys appended to ``skipped``).
    """
    for sample in samples:
        try:
            image = load_image(sample.path, limits=limits)
        except (SleuthError, OSError) as err:
            if skipped is not None:
                skipped.append(f"{sample.key}: {err}")
            continue
        yield TraceCase(key=sample.key, label=sample.label, image=image)
    if composites:
        from sleuth.evaluation.localisation import build_composite, composite_tasks

        for n, task in enumerate(composite_tasks(list(samples), count=composites, seed=seed)):
            made = build_composite(task)
            if made is None:
                continue
            yield TraceCase(
                key=f"composite/{n}/{task[0].key}",
                label="fake",
                image=load_image(made.data),
                regions=(made.box,),
            )


class Investigator:
    """Runs the investigation graph on one case at a time and returns its turns.

    Parameters
    ----------
    recorder : RecordingBackend
        The backend, recording.
    registry : ToolRegistry
        The tools.
    context : AgentContext
        Budgets and thresholds.
    folder : Path
        Where case images and artifacts are kept while exporting.
    """

    def __init__(
        self,
        recorder: RecordingBackend,
        registry: ToolRegistry,
        context: AgentContext,
        folder: Path,
    ) -> None:
        self.recorder = recorder
        self.context = context
        self.files = CaseFiles(folder)
        self.graph = build_graph(registry, recorder, self.files)

    def run(self, case: TraceCase) -> tuple[Verdict, list[Turn]]:
        """Investigate ``case``; return its verdict and recorded turns."""
        self.files.save_image(case.image)
        self.files.open_case(f"{case.image.sha256[:16]}-00000000")  # the graph's stand-in id
        self.recorder.reset()
        state = self.graph.invoke(
            {"image_id": case.image.sha256, "question": None, "name": case.key},
            context=self.context,
        )
        return Verdict.model_validate(state["verdict"]), list(self.recorder.turns)


def chains(turns: Sequence[Turn]) -> list[tuple[list[dict[str, Any]], list[int], list[dict]]]:
    """Group turns into conversations of which every request is a prefix.

    Returns
    -------
    list of (messages, requests, tools)
        The conversation (the last request and its answer), the length of each request
        in it, and the tool schemas.
    """
    out: list[tuple[list[dict[str, Any]], list[int], list[dict]]] = []
    for turn in turns:
        if out:
            messages, requests, tools = out[-1]
            if tools == turn.tools and turn.messages[: len(messages)] == messages:
                out[-1] = ([*turn.messages, turn.reply], [*requests, len(turn.messages)], tools)
                continue
        out.append(([*turn.messages, turn.reply], [len(turn.messages)], turn.tools))
    return out


def correct(label: str, verdict_label: str) -> bool:
    """Whether a verdict's label is the truth for a set's label (``uncertain`` never is)."""
    return TRUTH.get(label) == verdict_label


def export_traces(
    cases: Iterator[TraceCase],
    *,
    out: Path,
    recorder: RecordingBackend,
    registry: ToolRegistry,
    context: AgentContext,
    options: ExportOptions,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Investigate every case, write the kept records and images to ``out``.

    Returns
    -------
    dict
        The summary, also written to ``out/summary.json``: cases, failed, correct,
        written, by label, and the options.

    Raises
    ------
    SleuthError
        When every case failed.
    """
    out.mkdir(parents=True, exist_ok=True)
    images = out / IMAGES_DIR
    images.mkdir(exist_ok=True)
    kept: list[_Kept] = []
    failed: list[str] = []
    seen = 0
    work = Path(tempfile.mkdtemp(prefix="sleuth-traces-"))
    try:
        investigator = Investigator(recorder, registry, context, work / "cases")
        with open(work / "all.jsonl", "w", encoding="utf-8") as every:
            for index, case in enumerate(cases):
                seen += 1
                try:
                    verdict, turns = investigator.run(case)
                except SleuthError as err:
                    failed.append(f"{case.key}: {err}")
                    continue
                entry = _Kept(index, case.label, correct(case.label, verdict.label))
                for record in records(case, verdict, turns, recorder, options.fmt):
                    entry.images |= _store_images(record, images, options.fmt)
                    every.write(f"{index}\t{json.dumps(record, ensure_ascii=False)}\n")
                kept.append(entry)
                if progress is not None:
                    progress(case.key)
        chosen = select(kept, keep=options.keep, balance=options.balance)
        wanted = {k.index for k in chosen}
        written = 0
        with (
            open(work / "all.jsonl", encoding="utf-8") as every,
            open(out / TRACES_FILE, "w", encoding="utf-8") as fh,
        ):
            for line in every:
                index, _, text = line.partition("\t")
                if int(index) in wanted:
                    fh.write(text)
                    written += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    used = set().union(*(k.images for k in chosen)) if chosen else set()
    for path in images.iterdir():
        if path.name not in used:
            path.unlink()
    if seen and not kept:
        raise SleuthError(f"every case failed; the first: {failed[0]}")
    summary = {
        "cases": seen,
        "failed": failed,
        "correct": sum(k.correct for k in kept),
        "kept_cases": len(chosen),
        "records": written,
        "by_label": {label: sum(k.label == label for k in chosen) for label in sorted(TRUTH)},
        "keep": options.keep,
        "balance": options.balance,
        "format": options.fmt,
        "composites": options.composites,
        "max_steps": context.max_steps,
        "backend": recorder.identity.model_dump(mode="json", exclude_none=True),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def select(cases: Sequence[_Kept], *, keep: Keep, balance: bool) -> list[_Kept]:
    """Apply the rejection filter, then balance the labels (first cases of each label)."""
    chosen = [c for c in cases if c.correct or keep == "all"]
    if not balance:
        return chosen
    per_label = min((sum(c.label == label for c in chosen) for label in TRUTH), default=0)
    counts = dict.fromkeys(TRUTH, 0)
    out = []
    for case in chosen:
        if counts[case.label] < per_label:
            counts[case.label] += 1
            out.append(case)
    return out


def records(
    case: TraceCase,
    verdict: Verdict,
    turns: Sequence[Turn],
    recorder: RecordingBackend,
    fmt: Format,
) -> list[dict[str, Any]]:
    """Return a case's records (one per chain of requests; images still as data URLs)."""
    frame = recorder.frame(case.image)
    meta = {
        "id": case.key,
        "label": case.label,
        "regions": [list(b.as_tuple()) for b in case.regions],
        "size": list(case.image.size),
        "frame": {"units": frame.units, "extent": list(frame.extent)},
        "outcome": {
            "label": verdict.label,
            "p_ai": verdict.p_ai,
            "correct": correct(case.label, verdict.label),
            "boxes": [list(b.as_tuple()) for b in verdict.boxes],
            "stopped": verdict.stopped,
            "turns": len(turns),
        },
        "evidence": [
            {
                "id": e.id,
                "tool": e.tool,
                "kind": e.kind,
                "direction": e.direction,
                "score": e.score,
                "region": list(e.region.as_tuple()) if e.region else None,
                "contribution": _rounded((verdict.contributions or {}).get(e.id)),
            }
            for e in verdict.evidence
        ],
        "backend": recorder.identity.model_dump(mode="json", exclude_none=True),
    }
    parts = chains(turns)
    out = []
    for n, (messages, requests, tools) in enumerate(parts, start=1):
        if fmt == "trl":
            from sleuth.agent.backends.local import normalised_messages, served_tools

            head: dict[str, Any] = {
                "messages": _without_images(normalised_messages(messages)),
                "images": [],
                "tools": served_tools(tools),
            }
        else:
            head = {"messages": copy.deepcopy(messages), "tools": tools}
        out.append(head | {"requests": requests} | meta | {"part": n, "parts": len(parts)})
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _without_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark each image part for the ``images`` column (its URL kept until stored)."""
    for message in messages:
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                if part.get("type") == "image_url":
                    url = part.pop("image_url")["url"]
                    part.clear()
                    part.update(type="image", url=url)
    return messages


def _store_images(record: dict[str, Any], folder: Path, fmt: Format) -> set[str]:
    """Write a record's images as files; point the record at them. Returns their names."""
    names = set()
    for message in record["messages"]:
        if not isinstance(message.get("content"), list):
            continue
        for part in message["content"]:
            if fmt == "trl" and part.get("type") == "image":
                name = _store(part.pop("url"), folder)
                record["images"].append(f"{IMAGES_DIR}/{name}")
            elif fmt == "openai" and part.get("type") == "image_url":
                name = _store(part["image_url"]["url"], folder)
                part["image_url"]["url"] = f"{IMAGES_DIR}/{name}"
            else:
                continue
            names.add(name)
    return names


def _store(url: str, folder: Path) -> str:
    head, _, payload = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise ValueError(f"expected a base64 image data URL, got {url[:40]!r}")
    data = base64.b64decode(payload)
    suffix = head.removeprefix("data:image/").removesuffix(";base64")
    name = f"{hashlib.sha256(data).hexdigest()}.{suffix}"
    path = folder / name
    if not path.exists():
        path.write_bytes(data)
    return name


def inline_images(messages: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Return an ``openai`` record's messages with each image file as its data URL again.

    That is the request the server was (or would have been) sent: with ``requests``,
    ``inline_images(record["messages"], folder)[:n]`` is request ``n``'s messages.
    """
    out = copy.deepcopy(messages)
    for message in out:
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                if part.get("type") == "image_url":
                    path = folder / part["image_url"]["url"]
                    mime = path.suffix.lstrip(".")
                    data = base64.b64encode(path.read_bytes()).decode("ascii")
                    part["image_url"]["url"] = f"data:image/{mime};base64,{data}"
    return out


def answered_requests(
    record: dict[str, Any], folder: Path
) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]]:
    """Return each request of an ``openai`` record with its answer: (messages, tools, answer).

    The messages and tools are the request as the server receives it (images as data URLs);
    the answer is the assistant message that followed.
    """
    messages = inline_images(record["messages"], folder)
    return [(messages[:n], record["tools"], messages[n]) for n in record["requests"]]


def read_traces(folder: Path) -> list[dict[str, Any]]:
    """Read the records of an export folder."""
    with open(Path(folder) / TRACES_FILE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
