"""Boxes in the original image's pixel frame, and the geometry shared by every layer."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sleuth.tools.errors import ToolInputError


class Box(BaseModel):
    """An axis-aligned box in original pixels (after EXIF orientation).

    ``x0, y0`` is the top-left corner (inclusive) and ``x1, y1`` the bottom-right
    corner (exclusive), so a box covering the whole ``W x H`` image is
    ``Box(x0=0, y0=0, x1=W, y1=H)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    x0: int = Field(ge=0, description="Left edge, inclusive, in original pixels.")
    y0: int = Field(ge=0, description="Top edge, inclusive, in original pixels.")
    x1: int = Field(gt=0, description="Right edge, exclusive, in original pixels.")
    y1: int = Field(gt=0, description="Bottom edge, exclusive, in original pixels.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(
                f"box ({self.x0},{self.y0},{self.x1},{self.y1}) is empty: "
                "it needs x0 < x1 and y0 < y1"
            )
        return self

    @classmethod
    def parse(cls, text: str) -> Box:
        """Parse ``"x0,y0,x1,y1"``; raise :class:`ToolInputError` on bad text."""
        hint = "write four integers x0,y0,x1,y1 with 0 <= x0 < x1 and 0 <= y0 < y1"
        parts = [p.strip() for p in text.split(",")]
        try:
            x0, y0, x1, y1 = (int(p) for p in parts)
        except ValueError:
            raise ToolInputError(f"cannot read box {text!r}: {hint}") from None
        try:
            return cls(x0=x0, y0=y0, x1=x1, y1=y1)
        except ValidationError as err:
            raise ToolInputError(f"bad box {text!r}: {validation_message(err)}") from None

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.y1 - self.y0

    @property
    def area(self) -> int:
        """Area in pixels."""
        return self.width * self.height

    def as_tuple(self) -> tuple[int, int, int, int]:
        """Return ``(x0, y0, x1, y1)``."""
        return (self.x0, self.y0, self.x1, self.y1)

    def shift(self, dx: int, dy: int) -> Box:
        """Return the box moved by ``(dx, dy)`` pixels."""
        return Box(x0=self.x0 + dx, y0=self.y0 + dy, x1=self.x1 + dx, y1=self.y1 + dy)

    def check_inside(self, width: int, height: int) -> Box:
        """Return the box if it lies inside a ``width x height`` image, else raise.

        Raises
        ------
        ToolInputError
            When any edge is outside the image; the message gives the image size.
        """
        if self.x1 > width or self.y1 > height:
            raise ToolInputError(
                f"box {self.as_tuple()} is outside the {width}x{height} image: "
                f"use 0 <= x0 < x1 <= {width} and 0 <= y0 < y1 <= {height}"
            )
        return self

    def expand(self, margin: float, width: int, height: int) -> Box:
        """Grow the box by ``margin`` times its size on every side, clipped to the image."""
        mx, my = round(self.width * margin), round(self.height * margin)
        return Box(
            x0=max(0, self.x0 - mx),
            y0=max(0, self.y0 - my),
            x1=min(width, self.x1 + mx),
            y1=min(height, self.y1 + my),
        )

    def iou(self, other: Box) -> float:
        """Intersection over union with another box, in [0, 1]."""
        ix = max(0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        return inter / (self.area + other.area - inter)


def validation_message(err: ValidationError) -> str:
    """Condense a pydantic error into one line: ``field: problem; field: problem``."""
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
