"""The agent loop's own cost per step, measured beside the work it orchestrates.

An instant model (a backend that answers in microseconds) calls a no-op tool for N turns;
everything left is the loop: LangGraph, state reducers, evidence bookkeeping, message
building and the checkpointer. Measured with SQLite (the default case store) and in
memory, side by side in one run:

    python benchmarks/agent.py [--steps 20] [--repeat 5] [--base-url URL | --serve MODEL_DIR]

With ``--base-url``, the scripted two-turn loop (zoom, then a verdict) also runs against a vLLM
server already serving the scripted model (as ``tiny-vlm``, context 4096), and the same
requests are replayed straight to the server with the openai client: the loop's time beside
the model's own. ``--serve .cache/engines/scripted-<key>`` starts that server itself (the
tests' vLLM CPU venv and recipe; the scripted model is the one the real-engine tests train).

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
from sleuth.agent.cases import CaseFiles, new_case_id, open_checkpointer
from sleuth.agent.context import AgentContext
from sleuth.agent.frames import BoxFrame
from sleuth.agent.graph import build_graph
from sleuth.agent.session import DURABILITY
from sleuth.agent.verdict import BackendIdentity
from sleuth.tools import Finding, ToolRegistry, ToolResult, forensic_tool, load_image


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


TOOL_SECONDS: list[float] = []
ROUNDS = 5
"""Times each served case runs through the loop and is replayed (the best of each counts)."""


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
    from tests.engines.vllm_server import IMAGES_PER_PROMPT

    class Recording(OpenAIBackend):
        requests: list[dict] = []

        def _call(self, **request):
            self.requests.append(request)
            return super()._call(**request)

    options = BackendOptions(
        base_url=base_url,
        family="qwen2.5-vl",
        max_pixels=MAX_PIXELS,
        max_images=IMAGES_PER_PROMPT,  # as the tests' server accepts
    )
    backend = Recording("tiny-vlm", options)
    client = openai.OpenAI(base_url=base_url, api_key="EMPTY")
    context = AgentContext(max_steps=3, threshold=0.5)
    loop, model, ratios = [], [], []

    def replay(requests: list[dict]) -> float:
        start = time.perf_counter()
        for request in requests:
            client.chat.completions.create(
                model="tiny-vlm",
                max_tokens=options.max_new_tokens,
                temperature=0.0,
                logprobs=True,
                top_logprobs=5,
                **request,
            )
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        files = CaseFiles(Path(tmp))
        graph = build_graph(ToolRegistry.discover(enabled=TOOLS), backend, files)
        for seed in range(repeat + 1):
            loaded = load_image(image(seed))
            files.save_image(loaded)
            # loop, replay, loop, replay, ...: the best of ROUNDS of each, so that a drifting
            # server load hits both alike
            loop_runs, direct_runs = [], []
            for _ in range(ROUNDS):
                backend.requests.clear()
                start = time.perf_counter()
                state = graph.invoke({"image_id": loaded.sha256}, context=context)
                total = time.perf_counter() - start
                requests = list(backend.requests)
                survey = sum(s["seconds"] for s in state["steps"] if s["kind"] == "survey")
                tools = sum(s["seconds"] for s in state["steps"] if s["kind"] == "tool")
                loop_runs.append(total - survey)
                direct_runs.append(replay(requests))
            if seed == 0:
                continue  # warm-up
            loop.append(min(loop_runs))
            model.append(direct := min(direct_runs))
            ratios.append(loop[-1] / direct)
            print(
                f"  case {seed}: {len(requests)} calls, loop {loop[-1]:.3f} s "
                f"(tools {tools:.3f} s), model {direct:.3f} s, ratio {ratios[-1]:.3f}"
            )
    print(f"  all cases: loop {sum(loop):.3f} s vs model {sum(model):.3f} s")
    print(
        f"  ratio {sum(loop) / sum(model):.3f} (per case: median {statistics.median(ratios):.3f}, "
        f"{min(ratios):.3f}-{max(ratios):.3f})  target <= 1.1; the loop excludes the survey, "
        "which runs once"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base-url", help="vLLM serving the scripted model as tiny-vlm")
    parser.add_argument(
        "--serve",
        type=Path,
        metavar="MODEL_DIR",
        help="start vLLM's CPU build (.cache/vllm-venv) on this scripted model for the run",
    )
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.engines.vllm_server import serve

        with serve(args.serve, served_name="tiny-vlm", max_model_len=4096) as base_url:
            print(f"scripted two-turn loop against vLLM CPU serving {args.serve.name}")
            against_vllm(base_url, args.repeat)
    elif args.base_url:
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
