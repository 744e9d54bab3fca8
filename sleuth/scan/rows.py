"""One result row per image: its fields, in the order the tables show them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Route = Literal["survey", "model", "duplicate", "error"]


class ScanRow(BaseModel):
    """What a scan says about one image (a line of ``rows.jsonl``, a row of the table)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="The file (or the archive holding it).")
    member: str | None = Field(None, description="The archive member, for an image in one.")
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    label_true: str | None = Field(None, description="From a manifest's label column.")
    label: str | None = Field(None, description="ai_generated, real or uncertain.")
    p_ai: float | None = None
    route: Route = Field(
        description="survey: the survey's verdict; model: escalated to the model backend; "
        "duplicate: same bytes as duplicate_of; error: not analysed."
    )
    duplicate_of: str | None = None
    stable: bool | None = Field(None, description="The stability check on web-style copies.")
    evidence_ids: list[str] = Field(default_factory=list, description="Top items by effect.")
    evidence: list[str] = Field(default_factory=list, description="'E6 provenance +4.00: ...'")
    c2pa_signer: str | None = None
    c2pa_state: str | None = None
    declared_generator: str | None = None
    declared_source: str | None = Field(None, description="A declared digital source type.")
    phash: str | None = Field(None, description="64-bit perceptual hash, hex.")
    near_group: int | None = Field(
        None, description="Near-duplicate group (rows.parquet and the summary only)."
    )
    failed_tools: list[str] = Field(default_factory=list)
    case_id: str | None = None
    error: str | None = None
    seconds: float | None = None


FIELDS = list(ScanRow.model_fields)


def error_row(path: str, member: str | None, error: str, **known: Any) -> dict[str, Any]:
    """Return an error row for an image."""
    return ScanRow(path=path, member=member, route="error", error=error, **known).model_dump()


def shown(row: dict[str, Any]) -> str:
    """Return how a row names its image: the path, or ``archive!member``."""
    return row["path"] if not row.get("member") else f"{row['path']}!{row['member']}"
