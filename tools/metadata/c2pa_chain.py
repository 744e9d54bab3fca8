"""The C2PA manifest chain for the panel: validation state, the reason first, each manifest.

The store is read once by the ``provenance`` tool's reader (c2pa-python, offline: remote
manifests and OCSP are never fetched), and walked here from the active manifest through
its ingredients' manifests.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from sleuth.tools.builtin.provenance import c2pa_reader
from sleuth.tools.builtin.provenance.generator import excerpt
from sleuth.tools.builtin.provenance.xmp import source_type_term, strongest
from sleuth.tools.metadata.models import C2paChain, C2paManifest

MAX_ITEMS = 64
"""Actions and ingredients listed per manifest."""
FAILURES = (
    ("assertion.dataHash.mismatch", "signature does not validate: the image's bytes changed "
     "after signing"),
    ("assertion.boxesHash.mismatch", "signature does not validate: the image's bytes changed "
     "after signing"),
    ("assertion.bmffHash.mismatch", "signature does not validate: the image's bytes changed "
     "after signing"),
    ("claimSignature.mismatch", "signature does not validate: the claim signature does not "
     "match the claim"),
    ("signingCredential.expired", "credential expired: the signing certificate is outside "
     "its validity period"),
    ("signingCredential.revoked", "credential revoked"),
    ("signingCredential.invalid", "signature does not validate: the signing credential is "
     "invalid"),
)  # fmt: skip
"""Validation codes that make a store invalid, most telling first, and how to say them."""
UNTRUSTED = "signingCredential.untrusted"
NO_TRUST_LIST = "no trust list is loaded offline, so a self-made certificate would look the same"
State = Literal["valid", "invalid", "untrusted", "unreadable"]


def read_chain(raw: bytes, fmt: str) -> C2paChain | None:
    """Read a file's C2PA manifest store as a chain of manifests.

    Parameters
    ----------
    raw : bytes
        The file.
    fmt : str
        Pillow's format name.

    Returns
    -------
    C2paChain or None
        None when the file carries no manifest.
    """
    read = c2pa_reader.read_store(raw, fmt)
    if read is None:
        return None
    if read.error is not None:
        if read.remote_url is not None:
            reason = (
                f"the manifest is stored remotely ({read.remote_url}) and was not fetched (offline)"
            )
        else:
            reason = f"the manifest store could not be read: {read.error}"
        return C2paChain(state="unreadable", reason=reason, manifests=[])
    state, reason = judge(read.state, read.store.get("validation_status"))
    return C2paChain(state=state, reason=reason, manifests=chain(read.store))


def judge(state: str | None, statuses: object) -> tuple[State, str]:
    """Turn c2pa-python's validation state and status codes into a state and a reason.

    Parameters
    ----------
    state : str or None
        ``Trusted``, ``Valid`` or ``Invalid``.
    statuses : object
        The store's ``validation_status``: a list of ``{"code", "explanation"}``.

    Returns
    -------
    state : {"valid", "invalid", "untrusted", "unreadable"}
    reason : str
        The most telling failure first, with the library's explanation.
    """
    found: dict[str, str] = {}
    for item in statuses[:256] if isinstance(statuses, list) else []:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and code not in found:
            explanation = item.get("explanation")
            found[code] = excerpt(explanation, 160) if isinstance(explanation, str) else ""
    if state == "Invalid":
        for code, phrase in FAILURES:
            if code in found:
                return "invalid", _with_detail(phrase, code, found[code])
        other = next((c for c in found if c != UNTRUSTED), None)
        if other is not None:
            return "invalid", _with_detail("signature does not validate", other, found[other])
        return "invalid", "signature does not validate (no failure code reported)"
    if state == "Trusted":
        return "valid", "the signature validates and the signer is on the trust list"
    if state == "Valid":
        if UNTRUSTED in found:
            return "untrusted", (
                "signer not on the trust list: the signature and the image's hash validate, "
                f"but {NO_TRUST_LIST}"
            )
        return "valid", f"the signature and the image's hash validate ({NO_TRUST_LIST})"
    return "unreadable", f"the validation state is unknown ({excerpt(str(state), 40)})"


def _with_detail(phrase: str, code: str, explanation: str) -> str:
    detail = f"{excerpt(code, 60)}: {explanation}" if explanation else excerpt(code, 60)
    return f"{phrase} ({detail})"


def chain(store: dict[str, Any]) -> list[C2paManifest]:
    """Return the store's manifests: the active one, its ingredients' (breadth first), the rest.

    Parameters
    ----------
    store : dict
        c2pa-python's JSON of the store.

    Returns
    -------
    list of C2paManifest
        At most ``c2pa_reader.MAX_MANIFESTS``.
    """
    manifests = store.get("manifests")
    if not isinstance(manifests, dict):
        return []
    order: list[str] = []
    queue: deque[object] = deque([store.get("active_manifest")])
    while queue and len(order) < c2pa_reader.MAX_MANIFESTS:
        label = queue.popleft()
        if not isinstance(label, str) or label in order:
            continue
        manifest = manifests.get(label)
        if not isinstance(manifest, dict):
            continue
        order.append(label)
        for ingredient in _list(manifest.get("ingredients")):
            if isinstance(ingredient, dict):
                queue.append(ingredient.get("active_manifest"))
    for label in list(manifests)[: c2pa_reader.MAX_MANIFESTS]:
        if label not in order and len(order) < c2pa_reader.MAX_MANIFESTS:
            order.append(label)
    return [_manifest(str(label), manifests[label]) for label in order]


def _list(value: object) -> list[Any]:
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def _manifest(label: str, manifest: object) -> C2paManifest:
    if not isinstance(manifest, dict):
        manifest = {}
    signature = manifest.get("signature_info")
    signature = signature if isinstance(signature, dict) else {}
    issuer, name = signature.get("issuer"), signature.get("common_name")
    parts = [excerpt(v, 120) for v in (issuer, name) if isinstance(v, str) and v.strip()]
    signer = parts[0] if len(parts) == 1 else f"{parts[0]} ({parts[1]})" if parts else None
    issued = signature.get("time")
    actions, terms, unknown = [], [], None
    for action in c2pa_reader.manifest_actions(manifest)[:MAX_ITEMS]:
        name = action.get("action")
        agent = action.get("softwareAgent")
        agent = agent.get("name") if isinstance(agent, dict) else agent
        if isinstance(name, str):
            shown = excerpt(name, 60)
            actions.append(f"{shown} ({excerpt(agent, 80)})" if isinstance(agent, str) else shown)
        dst = action.get("digitalSourceType")
        if isinstance(dst, str):
            term, _ = source_type_term(dst)
            if term == "unknown":
                unknown = unknown or excerpt(dst, 120)
            else:
                terms.append(term)
    ingredients = []
    for ingredient in _list(manifest.get("ingredients")):
        if isinstance(ingredient, dict):
            title = ingredient.get("title")
            relation = ingredient.get("relationship")
            shown = excerpt(title, 120) if isinstance(title, str) else "(untitled)"
            if isinstance(relation, str):
                shown += f" ({excerpt(relation, 40)})"
            ingredients.append(shown)
    return C2paManifest(
        label=excerpt(label, 160),
        claim_generator=c2pa_reader.generator_name(manifest),
        signer=signer,
        issued=excerpt(issued, 60) if isinstance(issued, str) else None,
        actions=actions,
        ingredients=ingredients,
        ai_source=strongest(terms) or unknown,
    )
