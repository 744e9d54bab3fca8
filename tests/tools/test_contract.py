"""Every registered tool - built-in or plugin - passes the shipped contract."""

import pytest

from sleuth.tools import ToolRegistry
from sleuth.tools.testing import ToolContract

REGISTRY = ToolRegistry.discover()


class TestEveryRegisteredTool(ToolContract):
    @pytest.fixture(params=REGISTRY.names())
    def spec(self, request):
        return REGISTRY.get(request.param)


def test_the_builtins_are_registered_through_entry_points():
    assert {"zoom", "ela", "spectrum", "noise"} <= set(REGISTRY.names())
