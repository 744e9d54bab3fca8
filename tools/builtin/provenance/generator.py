"""Generator metadata: the settings image generators write into PNG text chunks and EXIF.

Every string here comes from the file and is untrusted: lengths are bounded, JSON is
parsed only below a size limit and walked without recursion, nothing is evaluated, and
text reaches findings only as short quoted excerpts in metrics.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from sleuth.tools.base import Finding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_CHUNKS = 10_000
MAX_TEXT = 4 * 1024 * 1024
"""Characters kept per text value; longer values are cut and flagged."""
MAX_TEXT_TOTAL = 16 * 1024 * 1024
MAX_JSON = 4 * 1024 * 1024
"""Largest text parsed as JSON (ComfyUI workflows run to a few hundred KB)."""
MAX_NODES = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class PngMetadata:
    """What the chunks of a PNG carry besides pixels."""

    texts: dict[str, str] = field(default_factory=dict)
    exif: bytes | None = None
    has_cabx: bool = False
    truncated: list[str] = field(default_factory=list)
    damaged: bool = False


def read_png_chunks(raw: bytes) -> PngMetadata:
    """Read text chunks (tEXt, zTXt, iTXt), eXIf and the C2PA caBX marker of a PNG.

    Chunks are walked from the bytes, without decoding pixels, so text stored after the
    image data is found too. Decompression is bounded.

    Parameters
    ----------
    raw : bytes
        The file.

    Returns
    -------
    PngMetadata
        Empty when ``raw`` is not a PNG.

    References
    ----------
    .. [1] W3C, "Portable Network Graphics (PNG) Specification (Third Edition)", 2025.
    """
    meta = PngMetadata()
    if not raw.startswith(PNG_SIGNATURE):
        return meta
    pos, total = len(PNG_SIGNATURE), 0
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(raw):
            meta.damaged = True
            break
        length, ctype = struct.unpack(">I4s", raw[pos : pos + 8])
        data = raw[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if len(data) < length:
            meta.damaged = True
        if ctype == b"IEND":
            break
        if ctype == b"caBX":
            meta.has_cabx = True
        elif ctype == b"eXIf" and meta.exif is None:
            meta.exif = bytes(data)
        elif ctype in (b"tEXt", b"zTXt", b"iTXt") and total < MAX_TEXT_TOTAL:
            parsed = _text_chunk(ctype, data)
            if parsed is None:
                meta.damaged = True
                continue
            key, text, cut = parsed
            if cut:
                meta.truncated.append(key)
            total += len(text)
            meta.texts.setdefault(key, text)
    return meta


def _text_chunk(ctype: bytes, data: bytes) -> tuple[str, str, bool] | None:
    key, sep, rest = data.partition(b"\x00")
    if not sep or not 1 <= len(key) <= 79:
        return None
    keyword = key.decode("latin-1")
    if ctype == b"tEXt":
        return keyword, *_cut(rest.decode("latin-1"))
    if ctype == b"zTXt":
        body = _inflate(rest[1:])
        return None if body is None else (keyword, *_cut(body[0].decode("latin-1"), body[1]))
    if len(rest) < 2:
        return None
    compressed, rest = rest[0], rest[2:]
    _lang, _, rest = rest.partition(b"\x00")
    _translated, _, rest = rest.partition(b"\x00")
    if compressed:
        body = _inflate(rest)
        if body is None:
            return None
        return keyword, *_cut(body[0].decode("utf-8", "replace"), body[1])
    return keyword, *_cut(rest.decode("utf-8", "replace"))


def _inflate(data: bytes) -> tuple[bytes, bool] | None:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_TEXT + 1)
    except zlib.error:
        return None
    return out[:MAX_TEXT], len(out) > MAX_TEXT or bool(inflater.unconsumed_tail)


def _cut(text: str, already: bool = False) -> tuple[str, bool]:
    return text[:MAX_TEXT], already or len(text) > MAX_TEXT


def excerpt(text: str, limit: int = 200) -> str:
    """Return ``text`` without control characters, cut to ``limit`` characters."""
    flat = _CONTROL.sub(" ", text[: limit * 4]).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode_user_comment(value: bytes | str) -> str:
    """Decode an EXIF UserComment (8-byte charset prefix, then text).

    ``UNICODE`` bodies are UTF-16 in either byte order (A1111 writes big-endian, SwarmUI
    little-endian); the order is guessed from where the zero bytes fall.
    """
    if isinstance(value, str):
        return value[:MAX_TEXT]
    head, body = value[:8], value[8 : 8 + 2 * MAX_TEXT]
    if head.startswith(b"UNICODE"):
        even_zeros = body[0::2].count(0)
        order = "utf-16-be" if even_zeros >= body[1::2].count(0) else "utf-16-le"
        return body[: len(body) // 2 * 2].decode(order, "replace").strip("\x00")
    if head.startswith((b"ASCII", b"\x00\x00\x00\x00\x00\x00\x00\x00", b"JIS")):
        return body.decode("utf-8", "replace").strip("\x00")
    return value[: 2 * MAX_TEXT].decode("utf-8", "replace").strip("\x00")


def parse_json(text: str) -> Any | None:
    """Parse ``text`` as JSON when it is small enough; None when it is not valid JSON."""
    stripped = text.strip()
    if len(stripped) > MAX_JSON or not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def walk_json(doc: Any) -> list[tuple[str, Any]]:
    """Return up to :data:`MAX_NODES` ``(key, value)`` pairs of a parsed JSON document.

    Iterative (no recursion), so deeply nested input cannot exhaust the stack.
    """
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack and len(out) < MAX_NODES:
        key, value = stack.pop()
        out.append((key, value))
        if isinstance(value, dict):
            stack.extend((str(k), v) for k, v in list(value.items())[:MAX_NODES])
        elif isinstance(value, list):
            stack.extend((key, v) for v in value[:MAX_NODES])
    return out


@dataclass(frozen=True)
class GeneratorClaim:
    """One generator declaration found in the metadata.

    ``generator`` always comes from this module's own vocabulary, never from the file;
    ``details`` holds excerpts of file text (untrusted) for metrics.
    """

    generator: str
    source: str
    strong: bool
    details: dict[str, str | int] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()


A1111_MARKERS = re.compile(r"(?:^|\n|, )(?:Steps: \d+|Sampler: |CFG scale: |Seed: -?\d+)")
_A1111_MODEL = re.compile(r"(?:^|, )Model: ([^,\n]{1,120})")
_PROMPT_KEYS = {"prompt", "positive_prompt", "negative_prompt", "negativeprompt", "uc"}
_SETTING_KEYS = {
    "seed", "steps", "sampler", "sampler_name", "cfg", "cfg_scale", "cfgscale", "scale",
    "guidance_scale", "num_inference_steps", "scheduler", "width", "height", "model",
}  # fmt: skip
_MODEL_INPUTS = ("ckpt_name", "unet_name", "model_name", "base_ckpt_name", "diffusion_model")


def find_generator_claims(
    texts: dict[str, str], exif_fields: dict[str, str], *, limit: int = 200
) -> list[GeneratorClaim]:
    """Find image-generator declarations in text chunks and EXIF fields.

    Recognised: AUTOMATIC1111/Forge/SD.Next ``parameters`` (PNG text, or EXIF
    UserComment in JPEG/WebP), SwarmUI and Fooocus JSON parameters, ComfyUI
    ``prompt``/``workflow`` graphs, InvokeAI (``invokeai_metadata``, ``sd-metadata``,
    ``Dream``), NovelAI (``Software``/``Source``/``Comment``), TensorArt
    (``generation_data``) and OpenAI Labs (DALL-E 2) EXIF markers.

    Parameters
    ----------
    texts : dict of str to str
        Text chunks (keyword to text) of a PNG, or Pillow's ``info`` strings.
    exif_fields : dict of str to str
        Decoded EXIF strings: ``Software``, ``UserComment``, ``MakerNote``,
        ``ImageDescription``.
    limit : int
        Length of the excerpts kept in ``details``.

    Returns
    -------
    list of GeneratorClaim
        At most one claim per source key.

    References
    ----------
    .. [1] AUTOMATIC1111, stable-diffusion-webui, ``modules/images.py`` (``parameters``).
    .. [2] comfyanonymous, ComfyUI, ``nodes.py`` ``SaveImage`` (``prompt``, ``workflow``).
    .. [3] IPTC, "Guidance for generative AI", and sd-parsers 0.6 (key inventory).
    """
    claims: list[GeneratorClaim] = []
    lowered = {k.lower(): (k, v) for k, v in texts.items()}
    if "parameters" in lowered:
        claims.extend(_parameters_claim(lowered["parameters"][1], "PNG text 'parameters'", limit))
    comfy = _comfy_claim(lowered.get("prompt", ("", ""))[1], lowered.get("workflow", ("", ""))[1])
    if comfy is not None:
        claims.append(comfy)
    for key in ("invokeai_metadata", "sd-metadata", "dream", "invokeai_graph"):
        if key in lowered:
            claims.append(_keyed_claim("InvokeAI", f"PNG text {key!r}", lowered[key][1], limit))
            break
    if "fooocus_scheme" in lowered:
        claims.append(GeneratorClaim("Fooocus", "PNG text 'fooocus_scheme'", True))
    if "generation_data" in lowered:
        claims.append(
            _keyed_claim(
                "TensorArt", "PNG text 'generation_data'", lowered["generation_data"][1], limit
            )
        )
    novelai = _novelai_claim(lowered, exif_fields, limit)
    if novelai is not None:
        claims.append(novelai)
    comment = exif_fields.get("UserComment", "")
    if comment and novelai is None:
        claims.extend(_parameters_claim(comment, "EXIF UserComment", limit, strict=True))
    openai = "OpenAI--ImageGeneration" in exif_fields.get("MakerNote", "") or (
        "Made with OpenAI" in comment
    )
    if openai:
        claims.append(GeneratorClaim("OpenAI DALL-E (OpenAI Labs)", "EXIF MakerNote", True))
    return claims


def _parameters_claim(
    text: str, source: str, limit: int, *, strict: bool = False
) -> list[GeneratorClaim]:
    doc = parse_json(text)
    if isinstance(doc, dict):
        if "sui_image_params" in doc:
            return [_keyed_claim("SwarmUI", source, text, limit, doc=doc)]
        keys = {str(k).lower() for k in doc}
        if "fooocus" in text[:4096].lower() or {"prompt", "negative", "performance"} <= keys:
            return [_keyed_claim("Fooocus", source, text, limit, doc=doc)]
        if keys & _PROMPT_KEYS and keys & _SETTING_KEYS:
            return [_keyed_claim("a diffusion app (JSON parameters)", source, text, limit, doc=doc)]
    if A1111_MARKERS.search(text[-8192:]) or A1111_MARKERS.search(text[:8192]):
        name = "AUTOMATIC1111/Forge-style WebUI"
        if "App: SD.Next" in text:
            name = "SD.Next"
        elif re.search(r"Version: f\d", text):
            name = "Stable Diffusion WebUI Forge"
        details: dict[str, str | int] = {"prompt_excerpt": excerpt(text.split("\n")[0], limit)}
        if model := _A1111_MODEL.search(text[-8192:]):
            details["model"] = excerpt(model.group(1), 120)
        return [GeneratorClaim(name, source, True, details)]
    if strict or not text.strip():
        return []
    return [
        GeneratorClaim(
            "an unidentified generator",
            source,
            False,
            {"text_excerpt": excerpt(text, limit)},
            ("the 'parameters' text has none of the usual generator fields",),
        )
    ]


def _comfy_claim(prompt: str, workflow: str) -> GeneratorClaim | None:
    if not prompt and not workflow:
        return None
    graph = parse_json(prompt) if prompt else None
    flow = parse_json(workflow) if workflow else None
    nodes = [v for v in graph.values() if isinstance(v, dict)] if isinstance(graph, dict) else []
    node_types = [n.get("class_type") for n in nodes if isinstance(n.get("class_type"), str)]
    flow_ok = isinstance(flow, dict) and isinstance(flow.get("nodes"), list)
    details: dict[str, str | int] = {"comfy_nodes": len(node_types)}
    models = sorted(
        {excerpt(v, 80) for k, v in walk_json(graph) if k in _MODEL_INPUTS and isinstance(v, str)}
    )
    if models:
        details["model"] = excerpt(", ".join(models), 200)
    keys = [k for k, v in (("prompt", prompt), ("workflow", workflow)) if v]
    source = "PNG text " + " + ".join(f"'{k}'" for k in keys)
    if node_types or flow_ok:
        return GeneratorClaim("ComfyUI", source, True, details)
    if not workflow and not prompt.lstrip().startswith(("{", "[")):
        return GeneratorClaim(
            "an unidentified generator",
            source,
            False,
            {"prompt_excerpt": excerpt(prompt, 200)},
            ("a plain-text 'prompt' chunk, not a ComfyUI graph",),
        )
    return GeneratorClaim(
        "ComfyUI",
        source,
        False,
        details,
        ("the ComfyUI chunk is not a valid node graph (malformed or truncated JSON)",),
    )


def _keyed_claim(
    name: str, source: str, text: str, limit: int, *, doc: Any | None = None
) -> GeneratorClaim:
    doc = parse_json(text) if doc is None else doc
    details: dict[str, str | int] = {}
    caveats: tuple[str, ...] = ()
    if doc is None:
        caveats = ("the metadata is not valid JSON; the key name alone identifies the app",)
    for key, value in walk_json(doc):
        low = key.lower()
        if low in {"prompt", "positive_prompt"} and isinstance(value, str):
            details.setdefault("prompt_excerpt", excerpt(value, limit))
        elif low in {"model", "model_name", "ckpt_name", "basemodel"} and isinstance(value, str):
            details.setdefault("model", excerpt(value, 120))
    return GeneratorClaim(name, source, doc is not None, details, caveats)


def _novelai_claim(
    lowered: dict[str, tuple[str, str]], exif_fields: dict[str, str], limit: int
) -> GeneratorClaim | None:
    software = lowered.get("software", ("", ""))[1] or exif_fields.get("Software", "")
    source_text = lowered.get("source", ("", ""))[1]
    if "novelai" not in (software + " " + source_text).lower():
        return None
    comment = lowered.get("comment", ("", ""))[1] or exif_fields.get("UserComment", "")
    doc = parse_json(comment)
    if isinstance(doc, dict) and isinstance(doc.get("Comment"), str):
        doc = parse_json(doc["Comment"])
    details: dict[str, str | int] = {"software": excerpt(software or source_text, 80)}
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), str):
        details["prompt_excerpt"] = excerpt(doc["prompt"], limit)
    where = (
        "PNG text 'Software'/'Comment'" if "software" in lowered else "EXIF Software/UserComment"
    )
    return GeneratorClaim("NovelAI", where, True, details)


DECLARED = "a declaration in the file, the strongest evidence available"


def generator_finding(claims: list[GeneratorClaim]) -> Finding | None:
    """Merge generator claims into one finding (None when there are none).

    Parameters
    ----------
    claims : list of GeneratorClaim
        Output of :func:`find_generator_claims`.

    Returns
    -------
    Finding or None
        Direction ``ai``: score 0.97 when a claim is well-formed (recognised fields or a
        valid graph), 0.8 when only a key name or malformed text remains.
    """
    if not claims:
        return None
    strong = any(c.strong for c in claims)
    names = list(dict.fromkeys(c.generator for c in claims))
    sources = list(dict.fromkeys(c.source for c in claims))
    metrics: dict[str, str | int | None] = {
        "generator": ", ".join(names),
        "generator_source": "; ".join(sources),
        "generator_claims": len(claims),
        "generator_well_formed": strong,
    }
    for claim in claims:
        for key, value in claim.details.items():
            metrics.setdefault(key, value)
    caveats = [c for claim in claims for c in claim.caveats]
    caveats.append("generator metadata is easily stripped; its presence is rarely false")
    if strong:
        summary = f"The metadata records generation settings of {', '.join(names)}: {DECLARED}."
    else:
        summary = f"The metadata has a generator key ({', '.join(names)}) but malformed content."
    return Finding(
        summary=summary,
        score=0.97 if strong else 0.8,
        direction="ai",
        kind="provenance",
        metrics=metrics,
        caveats=caveats,
    )
