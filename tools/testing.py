"""The tool contract as a pytest mixin, shipped for plugin authors.

Subclass :class:`ToolContract` in your test suite and provide a ``spec`` fixture (or
set ``tool``)::

    from sleuth.tools.testing import ToolContract
    from acme_sleuth import sharpness

    class TestSharpness(ToolContract):
        tool = sharpness

Every test below then runs against your tool. The module is also registered as a
pytest plugin (entry point ``pytest11``), which only adds the ``contract_images``
fixture; it does nothing else at import.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sleuth.tools.base import ToolResult, ToolSpec
from sleuth.tools.box import Box
from sleuth.tools.errors import ToolInputError
from sleuth.tools.image import LoadedImage, load_image
from sleuth.tools.registry import ToolRegistry, validate_spec

SHAPES = [(97, 61), (256, 192), (640, 480)]
"""Image sizes (width, height) the contract runs on: odd, small and ordinary."""


def contract_image(width: int, height: int, *, seed: int, fmt: str = "PNG") -> LoadedImage:
    """Return a seeded, textured test image of the given size, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    pixels = base[:, :, None] + rng.normal(0, 6, (height, width, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format=fmt)
    return load_image(buf.getvalue())


@pytest.fixture(scope="session")
def contract_images() -> list[LoadedImage]:
    """Seeded images in every contract shape, PNG and JPEG."""
    return [
        contract_image(w, h, seed=i, fmt=fmt)
        for i, (w, h) in enumerate(SHAPES)
        for fmt in ("PNG", "JPEG")
    ]


def _fingerprint(result: ToolResult) -> tuple[str, list[bytes]]:
    pixels = [np.ascontiguousarray(a.pixels()).tobytes() for a in result.artifacts]
    return result.model_dump_json(), pixels


class ToolContract:
    """Behaviour every forensic tool must have. Set ``tool`` or override ``spec``."""

    tool: ToolSpec | None = None

    @pytest.fixture
    def spec(self) -> ToolSpec:
        """Return the tool under test."""
        if self.tool is None:
            pytest.fail("set `tool = YOUR_SPEC` on the test class or override `spec`")
        return self.tool

    @pytest.fixture
    def registry(self, spec: ToolSpec) -> ToolRegistry:
        """Return a registry holding only the tool under test."""
        return ToolRegistry([spec])

    @pytest.fixture
    def no_network(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Make every outgoing network connection fail (local Unix sockets still work)."""
        connect = socket.socket.connect

        def local_only(sock: socket.socket, *args: Any, **kwargs: Any) -> None:
            if sock.family == socket.AF_UNIX:  # the image decoder's worker, not the network
                return connect(sock, *args, **kwargs)
            raise OSError("network access is not allowed in a forensic tool")

        def refuse(*args: object, **kwargs: object) -> None:
            raise OSError("network access is not allowed in a forensic tool")

        monkeypatch.setattr(socket.socket, "connect", local_only)
        monkeypatch.setattr(socket, "create_connection", refuse)
        yield

    def test_spec_is_valid(self, spec: ToolSpec) -> None:
        validate_spec(spec)

    def test_aliases_are_lower_case_words(self, spec: ToolSpec) -> None:
        assert isinstance(spec.aliases, tuple), "declare aliases as a tuple of str"
        for alias in spec.aliases:
            assert isinstance(alias, str) and alias.strip(), f"empty alias {alias!r}"
            assert alias == alias.lower(), f"alias {alias!r} is not lower-case"

    def test_params_round_trip(self, spec: ToolSpec) -> None:
        defaults = spec.params()
        assert spec.params.model_validate_json(defaults.model_dump_json()) == defaults
        schema = spec.params.model_json_schema()
        assert schema.get("type") == "object"
        assert set(schema.get("properties", {})) == set(spec.params.model_fields)

    def test_unknown_parameter_is_a_tool_input_error(
        self, registry: ToolRegistry, spec: ToolSpec, contract_images: list[LoadedImage]
    ) -> None:
        with pytest.raises(ToolInputError, match="no_such_parameter"):
            registry.run(spec.name, contract_images[0], {"no_such_parameter": 1})

    def test_wrongly_typed_parameters_are_tool_input_errors(
        self, registry: ToolRegistry, spec: ToolSpec, contract_images: list[LoadedImage]
    ) -> None:
        for field in spec.params.model_fields:
            with pytest.raises(ToolInputError, match=field):
                registry.run(spec.name, contract_images[0], {field: {"not": "valid"}})

    def test_runs_deterministically_without_touching_input(
        self,
        registry: ToolRegistry,
        spec: ToolSpec,
        contract_images: list[LoadedImage],
        no_network: None,
    ) -> None:
        for image in contract_images:
            before = image.full.copy()
            first = registry.run(spec.name, image)
            second = registry.run(spec.name, image)
            assert isinstance(first, ToolResult)
            assert _fingerprint(first) == _fingerprint(second), f"not deterministic on {image.size}"
            assert np.array_equal(image.full, before), "the tool changed its input"
            for finding in first.findings:
                assert finding.tool == spec.name
                for box in finding.boxes:
                    box.check_inside(*image.size)

    def test_a_calibrated_score_is_given_on_the_whole_image(
        self, registry: ToolRegistry, spec: ToolSpec, contract_images: list[LoadedImage]
    ) -> None:
        if spec.calibrated is None:
            return  # only a declared calibrated score counts in p_ai
        for image in contract_images[-2:]:  # 640x480, PNG and JPEG
            result = registry.run(spec.name, image)
            scored = [f for f in result.findings if f.score is not None and f.kind != "error"]
            assert scored, (
                f"{spec.name} declares a calibrated score but gave none on a {image.size} "
                "image: its first scored finding on the whole image is what counts in p_ai"
            )

    def test_region_results_stay_in_the_region(
        self, registry: ToolRegistry, spec: ToolSpec, contract_images: list[LoadedImage]
    ) -> None:
        image = contract_images[-1]
        region = Box(x0=200, y0=120, x1=520, y1=400)
        if not spec.regional:
            with pytest.raises(ToolInputError):
                registry.run(spec.name, image, region=region)
            return
        result = registry.run(spec.name, image, region=region)
        for finding in result.findings:
            for box in finding.boxes:
                assert region.x0 <= box.x0 and box.x1 <= region.x1
                assert region.y0 <= box.y0 and box.y1 <= region.y1

    def test_region_outside_the_image_is_a_tool_input_error(
        self, registry: ToolRegistry, spec: ToolSpec, contract_images: list[LoadedImage]
    ) -> None:
        image = contract_images[0]
        with pytest.raises(ToolInputError):
            registry.run(spec.name, image, region=Box(x0=0, y0=0, x1=10_000, y1=20))

    def test_artifacts_are_written_and_referenced(
        self,
        registry: ToolRegistry,
        spec: ToolSpec,
        contract_images: list[LoadedImage],
        tmp_path: Path,
    ) -> None:
        result = registry.run(spec.name, contract_images[2], artifact_dir=tmp_path)
        names = {a.name for a in result.artifacts}
        for artifact in result.artifacts:
            assert artifact.path is not None
            with Image.open(artifact.path) as png:
                assert png.format == "PNG"
                assert png.size == (artifact.width, artifact.height)
        for finding in result.findings:
            assert set(finding.artifacts) <= names
            assert "base64" not in finding.model_dump_json()
