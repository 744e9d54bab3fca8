"""The README's MCP client configurations parse, and name only options `sleuth serve` has."""

import json
import re

from typer.testing import CliRunner

from sleuth.cli import app
from tests.conftest import REPO


def mcp_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## MCP server")
    return text[start : text.index("\n## ", start + 1)]


def test_json_snippets_parse_and_launch_sleuth_serve():
    blocks = re.findall(r"```json\n(.*?)```", mcp_section(), re.S)
    assert len(blocks) >= 3
    commands = []
    for block in blocks:
        config = json.loads(block)
        servers = config.get("mcpServers") or config["servers"]
        commands += [s for s in servers.values() if s.get("type", "stdio") == "stdio"]
    assert commands and all(c["command"].endswith("sleuth") for c in commands)
    assert all(c["args"][0] == "serve" for c in commands)


def test_every_serve_option_in_the_readme_exists():
    help_text = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output
    lines = [line for line in mcp_section().splitlines() if "serve" in line or "--" in line]
    used = set(re.findall(r"(--[a-z][a-z0-9-]+)", "\n".join(lines)))
    client_flags = {"--header"}  # `claude mcp add`'s own
    missing = {flag for flag in used - client_flags if flag not in help_text}
    assert not missing, f"README names options `sleuth serve` lacks: {missing}"
    assert {"--allow-dir", "--token-file", "--allow-urls", "--jobs", "--queue"} <= used
