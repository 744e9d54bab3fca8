"""C2PA Content Credentials, read offline with c2pa-python.

Remote manifests and OCSP are never fetched; a cloud-only manifest is reported by its URL.
The library is imported on first use, and only for files that carry a C2PA marker.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sleuth.tools.base import Finding
from sleuth.tools.builtin.provenance.generator import excerpt
from sleuth.tools.builtin.provenance.xmp import source_type_term, strongest

MARKERS = (b"caBX", b"jumb", b"c2pa", b"dcterms:provenance")
"""Bytes present in every file with a C2PA manifest or a link to one: the PNG chunk type,
the JUMBF box type and label (JPEG APP11, WebP, ISOBMFF), the XMP remote-manifest link."""
MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
    "GIF": "image/gif",
}
SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
MAX_MANIFESTS = 64
MAX_ACTIONS = 512
_URL = re.compile(r"https?://[^\s\"'<>]{1,300}")

VENDORS = (("openai", "OpenAI"), ("chatgpt", "OpenAI"), ("google", "Google"),
           ("adobe", "Adobe"), ("amazon", "Amazon"), ("microsoft", "Microsoft"),
           ("truepic", "Truepic"), ("leica", "Leica"), ("nikon", "Nikon"), ("sony", "Sony"),
           ("canon", "Canon"), ("fujifilm", "Fujifilm"), ("samsung", "Samsung"),
           ("c2pa test", "a C2PA test certificate"))  # fmt: skip
"""Signer or claim-generator substrings (lower case) and the name a summary may use."""
CAPTURE_VENDORS = {"Truepic", "Leica", "Nikon", "Sony", "Canon", "Fujifilm"}
"""Signers of in-camera or secure-capture manifests."""
AI_AGENTS = re.compile(
    r"firefly|dall[\s·\-]?e|gpt-?4o|gpt-image|chatgpt|\bsora\b|image creator|"
    r"microsoft designer|titan image|bedrock|\bimagen\b|gemini|midjourney|stable diffusion",
    re.IGNORECASE,
)
"""Software agents and claim generators that are image generators."""
KNOWN_HOSTS = {"cai-manifests.adobe.com": "Adobe's Content Credentials cloud"}


def has_c2pa_marker(raw: bytes) -> bool:
    """Cheap pre-check: True when the bytes may hold a C2PA manifest or a link to one."""
    return any(marker in raw for marker in MARKERS)


@dataclass
class C2paFacts:
    """What a C2PA manifest store declares; strings are untrusted excerpts."""

    manifests: int = 0
    validation_state: str | None = None
    failures: list[str] = field(default_factory=list)
    claim_generator: str | None = None
    issuer: str | None = None
    vendor: str | None = None
    actions: list[str] = field(default_factory=list)
    source_types: list[str] = field(default_factory=list)
    active_source_types: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    remote_url: str | None = None
    error: str | None = None


@dataclass
class C2paStore:
    """The manifest store as c2pa-python reports it, before interpretation.

    ``store`` is the library's JSON (untrusted strings throughout); ``state`` its
    validation state (``Trusted``, ``Valid`` or ``Invalid``). When the library could not
    read the store, ``error`` says why and ``remote_url`` holds a cloud-only manifest's URL.
    """

    store: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    error: str | None = None
    remote_url: str | None = None


def read_store(raw: bytes, fmt: str) -> C2paStore | None:
    """Read the C2PA manifest store of a file without any network access.

    Parameters
    ----------
    raw : bytes
        The file.
    fmt : str
        Pillow's format name (``JPEG``, ``PNG``, ``WEBP``, ...).

    Returns
    -------
    C2paStore or None
        None when the file has no manifest (or the pre-check rules one out). A library
        error becomes ``error`` (and ``remote_url`` for a cloud-only manifest).

    References
    ----------
    .. [1] contentauth, c2pa-python 0.38 (``Reader``, ``Settings``, ``Context``).
    """
    mime = MIME.get(fmt.upper())
    if mime is None or not has_c2pa_marker(raw):
        return None
    import c2pa

    try:
        context = c2pa.Context(c2pa.Settings.from_dict(SETTINGS))
        reader = c2pa.Reader.try_create(mime, stream=io.BytesIO(raw), context=context)
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
    except (c2pa.C2paError, OSError, ValueError, RuntimeError) as err:
        message = str(err)
        if "ManifestNotFound" in message or "JumbfNotFound" in message:
            return None
        url = _URL.search(message) if "remote" in message.lower() else None
        return C2paStore(
            error=excerpt(message, 200), remote_url=excerpt(url.group(0), 300) if url else None
        )
    return C2paStore(
        store=store if isinstance(store, dict) else {},
        state=excerpt(str(state), 40) if state else None,
    )


def read_c2pa(raw: bytes, fmt: str) -> C2paFacts | None:
    """Read what the C2PA manifest store of a file declares, without any network access.

    Every manifest of the store is read (the active one and its ingredients' ones), so
    an AI origin recorded one edit back is still found.

    Parameters
    ----------
    raw : bytes
        The file.
    fmt : str
        Pillow's format name (``JPEG``, ``PNG``, ``WEBP``, ...).

    Returns
    -------
    C2paFacts or None
        None when the file has no manifest (or the pre-check rules one out). A library
        error becomes ``error`` (and ``remote_url`` for a cloud-only manifest).

    References
    ----------
    .. [1] C2PA, "Content Credentials: C2PA Technical Specification 2.2", 2025.
    .. [2] contentauth, c2pa-python 0.38 (``Reader``, ``Settings``, ``Context``).
    """
    read = read_store(raw, fmt)
    if read is None:
        return None
    if read.error is not None:
        return C2paFacts(error=read.error, remote_url=read.remote_url)
    facts = C2paFacts(validation_state=read.state)
    _read_store(read.store, facts)
    return facts


def _read_store(store: dict[str, Any], facts: C2paFacts) -> None:
    manifests = store.get("manifests")
    manifests = manifests if isinstance(manifests, dict) else {}
    facts.manifests = len(manifests)
    active = manifests.get(store.get("active_manifest"))
    if isinstance(active, dict):
        facts.claim_generator = generator_name(active)
        signature = active.get("signature_info")
        if isinstance(signature, dict) and isinstance(signature.get("issuer"), str):
            facts.issuer = excerpt(signature["issuer"], 120)
    names = " ".join(x for x in (facts.issuer, facts.claim_generator) if x).lower()
    facts.vendor = next((label for key, label in VENDORS if key in names), None)
    status = store.get("validation_status")
    for item in status[:64] if isinstance(status, list) else []:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and excerpt(code, 60) not in facts.failures:
            facts.failures.append(excerpt(code, 60))
    for manifest in list(manifests.values())[:MAX_MANIFESTS]:
        terms = facts.active_source_types if manifest is active else facts.source_types
        for action in manifest_actions(manifest):
            name = action.get("action")
            if isinstance(name, str) and len(facts.actions) < 32:
                facts.actions.append(excerpt(name, 60))
            dst = action.get("digitalSourceType")
            if isinstance(dst, str):
                term, _ = source_type_term(dst)
                if term != "unknown" and term not in terms:
                    terms.append(term)
            agent = action.get("softwareAgent")
            if isinstance(agent, dict):
                agent = agent.get("name")
            if isinstance(agent, str) and excerpt(agent, 80) not in facts.agents:
                facts.agents.append(excerpt(agent, 80))
    for term in facts.active_source_types:
        if term not in facts.source_types:
            facts.source_types.append(term)


def generator_name(manifest: dict[str, Any]) -> str | None:
    """Return a manifest's claim generator (names from ``claim_generator_info``), bounded."""
    info = manifest.get("claim_generator_info")
    if isinstance(info, list):
        names = [i.get("name") for i in info[:4] if isinstance(i, dict)]
        joined = ", ".join(n for n in names if isinstance(n, str))
        if joined:
            return excerpt(joined, 120)
    generator = manifest.get("claim_generator")
    return excerpt(generator, 120) if isinstance(generator, str) else None


def manifest_actions(manifest: Any) -> list[dict[str, Any]]:
    """Return the actions of a manifest's ``c2pa.actions`` assertions (bounded; dicts only)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("assertions"), list):
        return []
    found: list[dict[str, Any]] = []
    for assertion in manifest["assertions"][:256]:
        if not isinstance(assertion, dict):
            continue
        label, data = assertion.get("label"), assertion.get("data")
        if isinstance(label, str) and label.startswith("c2pa.actions") and isinstance(data, dict):
            actions = data.get("actions")
            if isinstance(actions, list):
                found.extend(a for a in actions[:MAX_ACTIONS] if isinstance(a, dict))
    return found


def declared_term(facts: C2paFacts) -> str | None:
    """Return the digital source type that describes the image as it is now.

    The active manifest's own AI-bearing type wins (a real photo with a generative fill
    is ``compositeWithTrainedAlgorithmicMedia`` even if the fill was an ingredient
    ``trainedAlgorithmicMedia``); otherwise the strongest type of the whole chain (a
    generated image later re-saved with a plain ``composite`` watermark edit stays
    ``trainedAlgorithmicMedia``).
    """
    active = strongest(facts.active_source_types)
    if active is not None and source_type_term(active)[1] in ("ai", "composite"):
        return active
    return strongest(facts.source_types)


def origin_class(facts: C2paFacts) -> str:
    """Classify what the manifest store says about origin.

    Returns
    -------
    str
        ``ai``, ``composite``, ``enhanced`` or ``capture`` from the declared digital
        source type (:func:`declared_term`); else ``ai_agent`` when an action's software
        agent or the claim generator names an AI generator, ``capture_vendor`` for a
        secure-capture signer, and ``unstated`` otherwise.
    """
    term = declared_term(facts)
    if term is not None:
        _, kind = source_type_term(term)
        if kind != "other":
            return kind
    names = " ".join(facts.agents + [facts.claim_generator or ""])
    if AI_AGENTS.search(names):
        return "ai_agent"
    if facts.vendor in CAPTURE_VENDORS:
        return "capture_vendor"
    return "unstated"


UNTRUSTED = (
    "the signature is not checked against a trust list here (no trust anchors), so a "
    "self-signed manifest would look the same"
)
FORGEABLE = "provenance can be stripped, and a capture claim forged with a self-made certificate"


def c2pa_finding(facts: C2paFacts) -> Finding:
    """Turn what the manifest store declares into one finding.

    Parameters
    ----------
    facts : C2paFacts
        Output of :func:`read_c2pa`.

    Returns
    -------
    Finding
        ``ai`` (score 0.95-0.97) for a declared AI origin, ``real`` (0.2-0.3) for a
        declared or signed capture, ``neutral`` otherwise.
    """
    metrics: dict[str, str | int | None] = {
        "c2pa_manifests": facts.manifests,
        "c2pa_validation_state": facts.validation_state,
        "c2pa_validation_failures": excerpt(",".join(facts.failures), 300) or None,
        "c2pa_claim_generator": facts.claim_generator,
        "c2pa_issuer": facts.issuer,
        "c2pa_actions": excerpt(",".join(facts.actions), 300) or None,
        "c2pa_digital_source_type": declared_term(facts),
        "c2pa_active_source_types": ",".join(facts.active_source_types) or None,
        "c2pa_source_types": ",".join(facts.source_types) or None,
        "c2pa_software_agents": excerpt(", ".join(facts.agents), 200) or None,
    }
    if facts.error is not None:
        return _error_finding(facts)
    cls = origin_class(facts)
    valid = facts.validation_state in ("Valid", "Trusted")
    signer = _signer_phrase(facts, valid)
    caveats = _validation_caveats(facts)
    term = metrics["c2pa_digital_source_type"]
    declared = (
        "a declaration in the file, the strongest evidence available"
        if valid
        else "a declaration in the file, but one whose signature does not hold"
    )
    if cls == "ai":
        summary = f"The C2PA manifest declares the image AI-generated ({term}){signer}: {declared}."
        return Finding(summary=summary, score=0.97 if valid else 0.95, direction="ai",
                       kind="provenance", metrics=metrics, caveats=caveats)  # fmt: skip
    if cls == "composite":
        summary = (f"The C2PA manifest declares AI-generated content in the image ({term})"
                   f"{signer}: {declared}.")  # fmt: skip
        caveats.insert(
            0, "only part of the image may be generated; the manifest does not say which"
        )
        return Finding(summary=summary, score=0.95, direction="ai", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if cls == "ai_agent":
        summary = f"The C2PA manifest names an AI image generator as the software used{signer}."
        return Finding(summary=summary, score=0.9, direction="ai", kind="provenance",
                       metrics=metrics, caveats=caveats)  # fmt: skip
    if cls in ("capture", "capture_vendor"):
        how = f"declares a capture ({term})" if cls == "capture" else "is a secure-capture record"
        summary = f"The C2PA manifest {how}{signer}, with no AI origin declared."
        return Finding(
            summary=summary,
            score=0.2 if valid else 0.3,
            direction="real",
            kind="provenance",
            metrics=metrics,
            caveats=[FORGEABLE, *caveats],
        )
    if cls == "enhanced":
        summary = f"The C2PA manifest declares algorithmic enhancement, not generation{signer}."
        return Finding(summary=summary, score=0.4, kind="provenance", metrics=metrics,
                       caveats=caveats)  # fmt: skip
    summary = f"A C2PA manifest is present{signer}, declaring no AI or capture origin."
    return Finding(summary=summary, kind="provenance", metrics=metrics,
                   caveats=["an edit history without a source type says nothing either way",
                            *caveats])  # fmt: skip


def _signer_phrase(facts: C2paFacts, valid: bool) -> str:
    """Return who signed the manifest, and whether the signature holds, as a summary phrase.

    The validation state is in the headline, not only in a caveat further down: an
    invalid, expired or untrusted signature is what an investigator must see first.
    """
    who = facts.vendor or "an unrecognised signer"
    if valid:
        return f", signed by {who}"
    state = facts.validation_state or "unknown"
    reasons = [
        r
        for r in ("expired", "untrusted", "hash.mismatch")
        if r in " ".join(facts.failures).lower()
    ]
    why = f": {', '.join(reasons)}" if reasons else ""
    return f", claiming to be signed by {who} but not validating (state {state}{why})"


def _validation_caveats(facts: C2paFacts) -> list[str]:
    caveats = []
    if facts.validation_state not in ("Valid", "Trusted"):
        caveats.append(f"the manifest does not validate (state {facts.validation_state})")
    failures = " ".join(facts.failures).lower()
    if "hash.mismatch" in failures:
        caveats.append("the file's bytes changed after signing (hash mismatch)")
    if "expired" in failures:
        caveats.append("the signing certificate has expired")
    caveats.append(UNTRUSTED)
    return caveats


def _error_finding(facts: C2paFacts) -> Finding:
    metrics: dict[str, str | None] = {
        "c2pa_error": facts.error,
        "c2pa_remote_url": facts.remote_url,
    }
    if facts.remote_url is not None:
        host = facts.remote_url.split("/")[2] if facts.remote_url.count("/") >= 2 else ""
        where = KNOWN_HOSTS.get(host.lower(), "a remote server")
        return Finding(
            summary=f"The file links to a cloud-hosted C2PA manifest on {where}; it was not "
            "fetched (offline), so the origin it declares is unknown.",
            kind="provenance",
            metrics=metrics,
            caveats=[
                "the link proves a Content Credential was made, not what it says; fetch "
                "the URL in c2pa_remote_url to read it"
            ],  # fmt: skip
        )
    return Finding(
        summary="The file carries C2PA data that could not be read (malformed or unsupported).",
        kind="provenance",
        metrics=metrics,
        caveats=["a damaged manifest proves nothing either way"],
    )
