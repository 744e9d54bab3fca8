"""The agent loop's own cost per step, measured beside the work it orchestrates.

An instant model (a backend that answers in microseconds) calls a no-op tool for N turns;
everything left is the loop: LangGraph, state reducers, evidence bookkeeping, message
building and the checkpointer. Measured with SQLite (the default case store) and in
memory, side by side in one run:

    python benchmarks/agent.py [--steps 20] [--repeat 5]

Target (issue "investigation agent"): loop overhead <= 2 ms per step.
"""

from __future__ import annotations

import argparse
import statistics
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


def run(graph, image, steps: int) -> tuple[float, int]:
    """Run one case; return the seconds not spent inside the tool, and the turns taken."""
    context = AgentContext(max_steps=steps, threshold=1.0, candidates=0)
    case_id = new_case_id(image.sha256)
    TOOL_SECONDS.clear()
    start = time.perf_counter()
    graph.invoke(
        {"image_id": image.sha256},
        {"configurable": {"thread_id": case_id}},
        context=context,
    )
    total = time.perf_counter() - start
    state = graph.get_state({"configurable": {"thread_id": case_id}}).values
    turns = sum(1 for s in state["steps"] if s["kind"] == "model")
    return total - sum(TOOL_SECONDS), turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
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
            print(f"  {'store':<8}{'ms/step':>10}{'run ms':>10}")
            for name, store in stores.items():
                # built once, as a server would; compiling costs tens of ms (printed below)
                start = time.perf_counter()
                graph = build_graph(
                    ToolRegistry([noop]), InstantBackend(), files, checkpointer=store
                )
                build_ms = (time.perf_counter() - start) * 1e3
                run(graph, image, args.steps)  # warm up
                per_step = []
                for _ in range(args.repeat):
                    seconds, turns = run(graph, image, args.steps)
                    per_step.append((seconds / turns, seconds))
                best = min(per_step)
                print(f"  {name:<8}{best[0] * 1e3:>10.2f}{best[1] * 1e3:>10.1f}")
                spread = statistics.pstdev(p[0] for p in per_step) * 1e3
                print(
                    f"  {'':<8}(spread {spread:.2f} ms/step over {args.repeat} runs; "
                    f"graph build {build_ms:.0f} ms, once)"
                )
            print("  target: <= 2 ms/step")


if __name__ == "__main__":
    main()
