"""The agent loop's own cost per step, measured beside the work it orchestrates.

An instant model (a backend that answers in microseconds) calls a no-op tool for N turns;
everything left is the loop: LangGraph, state reducers, evidence bookkeeping, message
building and the checkpointer. Measured with SQLite (the default case store) and in
memory, side by side in one run:

    python benchmarks/agent.py [--steps 20] [--repeat 5] [--base-url URL]

With ``--base-url``, the scripted two-turn loop (zoom, then a verdict) also runs against a vLLM
server already serving the scripted model (as ``tiny-vlm``), and the same requests are replayed
straight to the server with the openai client: the loop's time beside the model's own.

Checkpoints: ``run`` (the default) writes the case when a run ends, ``step`` after every step
too; both are printed.

Targets (issue "investigation agent"): loop overhead <= 2 ms per step; the two-turn loop
against vLLM <= 1.1x the model's own time for the same calls.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image
from pydantic import BaseModel, ConfigDict

from sleuth.agent.backends.base import Opinion, Situation
from sleuth.agent.context import AgentContext
from sleuth.agent.frames import BoxFrame
from sleuth.agent.graph import build_graph
from sleuth.agent.store import CaseFiles, new_case_id, open_checkpointer
from sleuth.agent.verdict import BackendIdentity
from sleuth.api import DURABILITY
from sleuth.tools import Finding, ToolRegistry, ToolResult, forensic_tool, load_image


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


TOOL_SECONDS: list[float] = []


@forensic_tool(
    name="noop",
    params=NoParams,
    summary="Does nothing.",
    caveat="Nothing.",
    score_meaning="A constant.",
)
def noop(image, params: NoParams, ctx) -> ToolResult:
    start = time.perf_counter()
    result = ToolResult(findings=[Finding(summary="nothing", score=0.5)])
    TOOL_SECONDS.append(time.perf_counter() - start)
    return result


class InstantBackend:
    """Calls ``noop`` on every turn until the budget ends the loop."""

    accepts_nudges = False
    identity = BackendIdentity(provider="offline", model="instant")

    def frame(self, image):
        return BoxFrame.original(*image.size)

    def picture(self, picture: Image.Image) -> Image.Image:
        return picture

    def reason(self, situation: Situation) -> AIMessage:
        index = situation.view.next_step()
        call = {"name": "noop", "args": {}, "id": f"c{index}", "type": "tool_call"}
        return AIMessage(content="", tool_calls=[call])

    def conclude(self, situation: Situation, message: AIMessage) -> Opinion:
        return Opinion(p_model=None, explanation="instant")


def run(graph, image, steps: int, checkpoints: str = "run") -> tuple[float, int]:
    """Run one case; return the seconds not spent inside the tool, and the turns taken."""
    context = AgentContext(max_steps=steps, threshold=1.0, candidates=0)
    case_id = new_case_id(image.sha256)
    TOOL_SECONDS.clear()
    start = time.perf_counter()
    graph.invoke(
        {"image_id": image.sha256},
        {"configurable": {"thread_id": case_id}},
        context=context,
        durability=DURABILITY[checkpoints],
    )
    total = time.perf_counter() - start
    state = graph.get_state({"configurable": {"thread_id": case_id}}).values
    turns = sum(1 for s in state["steps"] if s["kind"] == "model")
    return total - sum(TOOL_SECONDS), turns


def against_vllm(base_url: str, repeat: int) -> None:
    """Time the scripted loop on a served model beside direct calls with the same requests."""
    import openai

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripted cases' module

    from sleuth.agent.backends import BackendOptions
    from sleuth.agent.backends.openai import OpenAIBackend
    from tests.agent.scripted_chats import TOOLS, image
    from tests.engines.tiny_vlm import MAX_PIXELS

    class Recording(OpenAIBackend):
        requests: list[dict] = []

        def _call(self, **request):
            self.requests.append(request)
            return super()._call(**request)

    options = BackendOptions(base_url=base_url, family="qwen2.5-vl", max_pixels=MAX_PIXELS)
    backend = Recording("tiny-vlm", options)
    client = openai.OpenAI(base_url=base_url, api_key="EMPTY")
    context = AgentContext(max_steps=3, threshold=0.5)
    loop, model = [], []
    with tempfile.TemporaryDirectory() as tmp:
        files = CaseFiles(Path(tmp))
        graph = build_graph(ToolRegistry.discover(enabled=TOOLS), backend, files)
        for seed in range(repeat + 1):
            loaded = load_image(image(seed))
            files.save_image(loaded)
            backend.requests.clear()
            start = time.perf_counter()
            state = graph.invoke({"image_id": loaded.sha256}, context=context)
            total = time.perf_counter() - start
            survey = sum(s["seconds"] for s in state["steps"] if s["kind"] == "survey")
            start = time.perf_counter()
            for request in backend.requests:
                client.chat.completions.create(
                    model="tiny-vlm",
                    max_tokens=options.max_new_tokens,
                    temperature=0.0,
                    logprobs=True,
                    top_logprobs=5,
                    **request,
                )
            direct = time.perf_counter() - start
            if seed == 0:
                continue  # warm-up
            loop.append(total - survey)
            model.append(direct)
            turns = len(backend.requests)
            print(f"  case {seed}: {turns} calls, loop {loop[-1]:.3f} s, model {direct:.3f} s")
    ratio = statistics.median(loop) / statistics.median(model)
    print(
        f"  median loop {statistics.median(loop):.3f} s vs model {statistics.median(model):.3f} s"
    )
    print(f"  ratio {ratio:.3f}  (target <= 1.1; the loop excludes the survey, which runs once)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base-url", help="vLLM serving the scripted model as tiny-vlm")
    args = parser.parse_args()
    if args.base_url:
        print(f"scripted two-turn loop against {args.base_url}")
        against_vllm(args.base_url, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        files = CaseFiles(Path(tmp))
        rgb = Image.new("RGB", (64, 64), (120, 110, 100))
        path = Path(tmp) / "flat.png"
        rgb.save(path)
        image = load_image(path)
        files.save_image(image)
        stores = {"memory": InMemorySaver()}
        with open_checkpointer(Path(tmp) / "cases.sqlite") as sqlite:
            stores["sqlite"] = sqlite
            print(f"instant model, {args.steps} turns per run, best of {args.repeat}")
            print(f"  {'store':<8}{'checkpoints':<13}{'ms/step':>9}{'run ms':>9}{'spread':>9}")
            for name, store in stores.items():
                # built once, as a server would; compiling costs tens of ms (printed below)
                start = time.perf_counter()
                graph = build_graph(
                    ToolRegistry([noop]), InstantBackend(), files, checkpointer=store
                )
                build_ms = (time.perf_counter() - start) * 1e3
                for checkpoints in DURABILITY:
                    run(graph, image, args.steps, checkpoints)  # warm up
                    per_step = []
                    for _ in range(args.repeat):
                        seconds, turns = run(graph, image, args.steps, checkpoints)
                        per_step.append((seconds / turns, seconds))
                    best = min(per_step)
                    spread = statistics.pstdev(p[0] for p in per_step) * 1e3
                    print(
                        f"  {name:<8}{checkpoints:<13}{best[0] * 1e3:>9.2f}"
                        f"{best[1] * 1e3:>9.1f}{spread:>9.2f}"
                    )
                print(f"  ({name}: graph built once in {build_ms:.0f} ms)")
            print("  target: <= 2 ms/step with the default checkpoints ('run')")


if __name__ == "__main__":
    main()
