"""The investigation's nodes: survey -> reason <-> act -> decide -> finalize, and follow-ups.

Each node returns a partial state update, or a ``Command`` that also says where to go.
Nodes share what they need through one :class:`Investigation` built by the graph factory;
budgets and thresholds come from the run's :class:`~sleuth.agent.context.AgentContext`.
Tools run isolated (:func:`sleuth.tools.isolation.run_isolated`): a tool that fails gives
an evidence item of kind ``error`` and the investigation goes on without it.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Literal, cast

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from PIL import Image

from sleuth import prompts
from sleuth.agent import messages as msg
from sleuth.agent import stability as steady
from sleuth.agent.backends.base import Backend, BackendError, Opinion, Situation
from sleuth.agent.backends.offline import OfflineBackend
from sleuth.agent.cases import CaseFiles
from sleuth.agent.context import AgentContext
from sleuth.agent.evidence import failed_tools, failure_note, to_evidence
from sleuth.agent.fusion import FusionWeights, contributions, fuse
from sleuth.agent.state import CaseState
from sleuth.agent.verdict import Evidence, Stability, Step, Verdict, label_for
from sleuth.agent.versions import versions
from sleuth.agent.view import CaseView
from sleuth.tools import Box, LoadedImage, ToolInputError, ToolRegistry, UnknownToolError
from sleuth.tools.base import ToolResult
from sleuth.tools.image import ImageLimits
from sleuth.tools.isolation import failure, run_isolated
from sleuth.tools.survey import run_survey

logger = logging.getLogger(__name__)

Ctx = Runtime[AgentContext]


class Investigation:
    """The nodes of the graph and what they share.

    Parameters
    ----------
    registry : ToolRegistry
        Tools the survey runs and the backend may call.
    backend : Backend
        The reasoning engine.
    files : CaseFiles
        Where images and artifacts are kept.
    fallback : Backend, optional
        Answers instead when ``backend`` fails (recorded in the verdict); without it a
        backend failure raises :class:`BackendError` and the case stays resumable.
    limits : ImageLimits, optional
        Limits for reloading stored images.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        backend: Backend,
        files: CaseFiles,
        *,
        fallback: Backend | None = None,
        limits: ImageLimits | None = None,
    ) -> None:
        self.registry = registry
        self.backend = backend
        self.files = files
        self.fallback = fallback
        self.limits = limits
        self.composer = OfflineBackend()
        self._images: dict[str, LoadedImage] = {}
        self._urls = msg.DataUrlCache()

    # -- shared helpers ------------------------------------------------------------

    def image(self, image_id: str) -> LoadedImage:
        """Return the case image, loaded once per process."""
        if image_id not in self._images:
            if len(self._images) > 8:
                self._images.clear()
            self._images[image_id] = self.files.load_image(image_id, self.limits)
        return self._images[image_id]

    def backend_for(self, state: CaseState) -> Backend:
        """Return the backend answering this case (the fallback once the primary failed)."""
        if state.get("fallback_from") and self.fallback is not None:
            return self.fallback
        return self.backend

    def situation(self, state: CaseState, runtime: Ctx, backend: Backend) -> Situation:
        """Assemble what a backend needs for one turn."""
        view = CaseView(state)
        image = self.image(state["image_id"])
        case_id = case_id_of(runtime, state)

        def resolve(ref: str) -> str:
            if ref == msg.CASE_IMAGE:
                return self._urls.get(
                    (id(backend), image.sha256),
                    lambda: backend.picture(Image.fromarray(image.full)),
                )
            path = self.files.artifact_path(case_id, ref)
            written = path.stat()  # a re-run may rewrite an artifact under the same name

            def artifact() -> Image.Image:
                with Image.open(path) as opened:
                    return backend.picture(opened.convert("RGB"))

            key = (id(backend), str(path), written.st_mtime_ns, written.st_size)
            return self._urls.get(key, artifact)

        return Situation(
            view=view,
            image=image,
            frame=backend.frame(image),
            registry=self.registry,
            context=runtime.context,
            resolve=resolve,
        )

    # -- nodes ---------------------------------------------------------------------

    def survey(self, state: CaseState, runtime: Ctx) -> dict[str, Any]:
        """Run the survey tools on the whole image and open the conversation."""
        image = self.image(state["image_id"])
        case_id = case_id_of(runtime, state)
        start = time.perf_counter()
        done = run_survey(
            self.registry,
            image,
            artifact_dir=self.files.artifact_dir(case_id),
            top_k=runtime.context.candidates,
        )
        view = CaseView(state)
        evidence: list[Evidence] = []
        steps: list[Step] = []
        failed = done.failed
        for name, result in done.results.items():
            index = view.next_step(len(steps))
            found = to_evidence(result, view, offset=len(evidence), region=None, step=index)
            evidence += found
            steps.append(
                Step(
                    index=index,
                    kind="survey",
                    tool=name,
                    result=one_line(found),
                    error=name in failed,
                    seconds=round(done.seconds[name], 4),
                )
            )
        stability = None
        if runtime.context.stability_variants:
            stability = steady.check(
                self.registry,
                image,
                evidence,
                count=runtime.context.stability_variants,
                band=runtime.context.band,
            )
            steps.append(
                Step(
                    index=view.next_step(len(steps)),
                    kind="stability",
                    result=steady.summary(stability),
                    seconds=stability.seconds,
                )
            )
        candidates = [c.box for c in done.candidates]
        opening = msg.opening_message(
            question=state.get("question"),
            evidence=evidence,
            candidates=candidates,
            frame=self.backend_for(state).frame(image),
            file_format=image.format,
        )
        logger.debug("survey of %s took %.2fs", case_id, time.perf_counter() - start)
        return {
            "mode": "analyze",
            "evidence": dumps(evidence),
            "steps": dumps(steps),
            "candidates": dumps(candidates),
            "messages": stamp([opening], "opening"),
            "turns": 0,
            "stop": None,
            "nudged": False,
            "stability": stability.model_dump(mode="json") if stability else None,
        }

    def follow_up(self, state: CaseState) -> dict[str, Any]:
        """Open a follow-up question on a concluded case."""
        question = state.get("question") or "Summarise the evidence."
        opening = msg.followup_message(question)
        return {
            "mode": "followup",
            "question": question,
            "messages": stamp([opening], f"question{CaseView(state).next_step()}"),
            "turns": 0,
            "stop": None,
        }

    def reason(self, state: CaseState, runtime: Ctx) -> Command[Literal["act", "decide", "answer"]]:
        """Let the backend take a turn: call tools, conclude, or answer."""
        view = CaseView(state)
        after: Literal["answer", "decide"] = "answer" if view.mode == "followup" else "decide"
        if view.turns >= runtime.context.max_steps:
            return Command(goto=after, update={"stop": "budget"})
        backend = self.backend_for(state)
        update: dict[str, Any] = {"turns": view.turns + 1}
        start = time.perf_counter()
        try:
            message = backend.reason(self.situation(state, runtime, backend))
        except BackendError as err:
            backend, failure = self._fall_back(backend, err)
            update["fallback_from"] = failure
            message = backend.reason(self.situation(state, runtime, backend))
        calls = message.tool_calls or message.invalid_tool_calls
        summary = (
            "calls " + ", ".join(c.get("name") or "?" for c in calls)
            if calls
            else ("answers" if view.mode == "followup" else "concludes")
        )
        step = Step(
            index=view.next_step(),
            kind="model",
            result=summary,
            seconds=round(time.perf_counter() - start, 4),
        )
        update |= {"messages": stamp([message], f"model{step.index}"), "steps": dumps([step])}
        goto: Literal["act", "answer", "decide"] = "act" if calls else after
        return Command(goto=goto, update=update)

    def act(self, state: CaseState, runtime: Ctx) -> dict[str, Any]:
        """Run the tool calls of the last model turn; bad calls go back as errors."""
        view = CaseView(state)
        message = state["messages"][-1]
        if not isinstance(message, AIMessage):
            raise RuntimeError("act reached without a model turn before it")
        backend = self.backend_for(state)
        image = self.image(state["image_id"])
        frame = backend.frame(image)
        artifact_dir = self.files.artifact_dir(case_id_of(runtime, state))
        replies: list[Any] = []
        evidence: list[Evidence] = []
        steps: list[Step] = []
        for bad in message.invalid_tool_calls:
            hint = f"your tool call could not be read ({bad.get('error') or 'invalid JSON'})"
            replies.append(HumanMessage(content=hint + "; write valid JSON arguments."))
            steps.append(
                Step(
                    index=view.next_step(len(steps)),
                    kind="tool",
                    tool=bad.get("name"),
                    result=hint,
                    error=True,
                )
            )
        for call in message.tool_calls:
            index = view.next_step(len(steps))
            call_id = call.get("id") or f"call_{index}"
            args = dict(call.get("args") or {})
            start = time.perf_counter()
            try:
                result, region = self._run_call(
                    call["name"], args, image, frame, artifact_dir, label=f"s{index}"
                )
            except (ToolInputError, UnknownToolError) as err:
                replies.append(msg.tool_message(call_id, call["name"], error=str(err), frame=frame))
                steps.append(
                    Step(
                        index=index,
                        kind="tool",
                        tool=call["name"],
                        arguments=args,
                        result=f"error: {err}",
                        error=True,
                        seconds=round(time.perf_counter() - start, 4),
                    )
                )
                continue
            found = to_evidence(result, view, offset=len(evidence), region=region, step=index)
            evidence += found
            crops = [f"{a.name}.png" for a in result.artifacts if a.kind == "crop"]
            replies.append(
                msg.tool_message(call_id, call["name"], evidence=found, crops=crops, frame=frame)
            )
            shown = dict(args, box=list(region.as_tuple())) if region else args
            steps.append(
                Step(
                    index=index,
                    kind="tool",
                    tool=call["name"],
                    arguments=shown,
                    result=one_line(found),
                    error=failure(result) is not None,
                    seconds=round(time.perf_counter() - start, 4),
                )
            )
        replies = stamp(replies, f"tools{view.next_step()}")
        return {"messages": replies, "evidence": dumps(evidence), "steps": dumps(steps)}

    def decide(self, state: CaseState, runtime: Ctx) -> Command[Literal["reason", "finalize"]]:
        """Fuse the backend's opinion with the evidence; stop when confident."""
        ctx = runtime.context
        if state.get("stop") == "budget":
            return Command(goto="finalize", update={"opinion": None})
        backend = self.backend_for(state)
        situation = self.situation(state, runtime, backend)
        update: dict[str, Any] = {}
        last = cast(AIMessage, state["messages"][-1])  # decide always follows a model turn
        try:
            opinion = backend.conclude(situation, last)
        except BackendError as err:
            backend, failure = self._fall_back(backend, err)
            update["fallback_from"] = failure
            situation = self.situation(state, runtime, backend)
            opinion = backend.conclude(situation, last)
        p_ai = fuse(
            situation.view.evidence,
            p_model=opinion.p_model,
            band=ctx.band,
            calibrated=self.registry.calibrations(),
        )
        update["opinion"] = opinion_dump(opinion)
        confident = max(p_ai, 1.0 - p_ai) >= ctx.threshold
        if confident:
            return Command(goto="finalize", update=update | {"stop": "confident"})
        may_look = getattr(backend, "accepts_nudges", False) and not state.get("nudged")
        if may_look and situation.remaining > 0:
            nudge = prompts.render(
                "keep_looking", p_ai=p_ai, threshold=ctx.threshold, remaining=situation.remaining
            )
            return Command(
                goto="reason",
                update=update
                | {"nudged": True, "messages": stamp([HumanMessage(content=nudge)], "nudge")},
            )
        return Command(goto="finalize", update=update | {"stop": "concluded"})

    def finalize(self, state: CaseState, runtime: Ctx) -> dict[str, Any]:
        """Write the verdict."""
        ctx = runtime.context
        view = CaseView(state)
        evidence = view.evidence
        stop = state.get("stop") or "concluded"
        backend = self.backend_for(state)
        calibrated = self.registry.calibrations()
        p_signals = fuse(evidence, band=ctx.band, calibrated=calibrated)
        raw = state.get("opinion")
        if stop == "budget" or raw is None:
            situation = self.situation(state, runtime, self.composer)
            opinion = self.composer.conclude(situation, AIMessage(content=""))
            p_ai, label = p_signals, "uncertain"
        else:
            opinion = opinion_load(raw)
            p_ai = fuse(evidence, p_model=opinion.p_model, band=ctx.band, calibrated=calibrated)
            label = label_for(p_ai, ctx.band)
        explanation = opinion.explanation
        recorded = state.get("stability")
        stability = Stability.model_validate(recorded) if recorded else None
        if stability is not None and not stability.stable:
            label = "uncertain"  # p_ai stays as fused: calibration is not touched
            explanation = f"{explanation}\n\n{steady.note(stability)}"
        failed = failed_tools(evidence)
        if failed:
            explanation = f"{explanation}\n\n{failure_note(failed)}"
        steps = view.steps
        verdict = Verdict(
            case_id=case_id_of(runtime, state),
            image_id=state["image_id"],
            label=label,
            p_ai=round(p_ai, 4),
            explanation=explanation,
            evidence=evidence,
            contributions=contributions(
                evidence, FusionWeights.load(), band=ctx.band, calibrated=calibrated
            ),
            regions=view.candidates,
            boxes=opinion.boxes,
            steps=steps,
            p_signals=round(p_signals, 4),
            p_model=opinion.p_model,
            abstain_band=ctx.band,
            stopped=stop,
            backend=backend.identity.model_copy(
                update={"fallback_from": state.get("fallback_from")}
            ),
            versions=versions(),
            timings=timings(steps),
            stability=stability,
            failed_tools=list(failed),
        )
        return {"verdict": verdict.model_dump(mode="json"), "mode": "followup"}

    def answer(self, state: CaseState, runtime: Ctx) -> dict[str, Any]:
        """Record the answer to a follow-up question.

        A backend that could not understand the question says so on its message
        (``additional_kwargs["understood"] = False``); without it the answer counts as
        understood.
        """
        view = CaseView(state)
        last = state["messages"][-1]
        if state.get("stop") == "budget" or not isinstance(last, AIMessage) or last.tool_calls:
            situation = self.situation(state, runtime, self.composer)
            composed = self.composer.reason(situation)
            text = "The step budget ran out; the evidence gathered so far: " + str(composed.content)
            understood = composed.additional_kwargs.get("understood", True)
        else:
            text = last.text if hasattr(last, "text") else str(last.content)
            understood = last.additional_kwargs.get("understood", True)
        first = view.question_start()
        new = [e.id for e in view.evidence if e.step >= first]
        cited = re.findall(r"\[(E\d+)\]", text)
        known = {e.id for e in view.evidence}
        rests_on = list(dict.fromkeys([*new, *(c for c in cited if c in known)]))
        step = Step(index=view.next_step(), kind="answer", result=text.splitlines()[0][:200])
        record = {
            "question": view.question,
            "answer": text,
            "evidence": rests_on,
            "backend": self.backend_for(state).identity.model_dump(mode="json"),
            "understood": understood is not False,
        }
        return {"answers": [record], "steps": dumps([step])}

    # -- internals -----------------------------------------------------------------

    def _fall_back(self, backend: Backend, err: BackendError) -> tuple[Backend, str]:
        failure = f"{backend.identity.provider}:{backend.identity.model} failed: {err}"
        if self.fallback is None or backend is self.fallback:
            raise err
        logger.warning("%s; the offline analyst answers instead", failure)
        return self.fallback, failure

    def _run_call(
        self,
        name: str,
        args: dict[str, Any],
        image: LoadedImage,
        frame: Any,
        artifact_dir: Any,
        *,
        label: str,
    ) -> tuple[ToolResult, Box | None]:
        spec = self.registry.get(name)
        params = dict(args)
        coords = params.pop("box", None)
        region = frame.to_original(coords) if coords is not None else None
        if region is not None and not spec.regional:
            region = None
        params = {k: v for k, v in params.items() if v is not None}
        result = run_isolated(
            self.registry,
            name,
            image,
            params,
            region=region,
            artifact_dir=artifact_dir,
            label=label,
        )
        return result, region


def case_id_of(runtime: Ctx, state: CaseState) -> str:
    """Return the case id: the LangGraph thread id, or a stable stand-in without one."""
    info = runtime.execution_info
    thread = info.thread_id if info is not None else None
    return thread or f"{state['image_id'][:16]}-00000000"


def one_line(found: list[Evidence]) -> str:
    """Summarise a call's evidence in one line: the strongest finding first."""
    if not found:
        return "no findings"
    best = max(found, key=lambda e: -1.0 if e.score is None else e.score)
    score = "" if best.score is None else f" (score {best.score:.2f}, {best.direction})"
    more = f" +{len(found) - 1} more" if len(found) > 1 else ""
    return f"[{best.id}] {best.summary[:160]}{score}{more}"


def timings(steps: list[Step]) -> dict[str, float]:
    """Seconds spent per kind of step."""
    out: dict[str, float] = {}
    for step in steps:
        out[step.kind] = round(out.get(step.kind, 0.0) + step.seconds, 4)
    return out


def dumps(items: list[Any]) -> list[dict[str, Any]]:
    """Pydantic models to JSON-ready dicts for the state."""
    return [item.model_dump(mode="json") for item in items]


def stamp(messages: list[Any], key: str) -> list[Any]:
    """Give messages without an id a stable one, ``<key>.<n>``, unique within the case.

    Keys name the node and a step index, which never repeats within a case (the survey
    opens a case once; one nudge per case); the reducer would otherwise draw a random id
    for each message.
    """
    for n, message in enumerate(messages):
        if message.id is None:
            message.id = f"{key}.{n}"
    return messages


def opinion_dump(opinion: Opinion) -> dict[str, Any]:
    """Return an opinion as a JSON-ready dict."""
    return {
        "p_model": opinion.p_model,
        "explanation": opinion.explanation,
        "boxes": dumps(opinion.boxes),
    }


def opinion_load(data: dict[str, Any]) -> Opinion:
    """Invert :func:`opinion_dump`."""
    return Opinion(
        p_model=data.get("p_model"),
        explanation=data["explanation"],
        boxes=[Box.model_validate(b) for b in data.get("boxes", [])],
    )
