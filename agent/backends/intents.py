"""What a follow-up question asks for, read without a model: pure functions over the text.

The offline analyst answers a question by its :class:`Intent`:

- ``why``: what moved the verdict ("why?", "explain", "what made you say that");
- ``evidence``: evidence items by id ("tell me more about E3 and E5");
- ``tools``: tools on a region ("what did ELA show in box 2?", "ela on 10,10,200,200");
- ``zoom``: an enlarged crop of a region ("zoom on the top left quarter");
- ``provenance``: what the file declares (C2PA, EXIF, generator metadata, watermark);
- ``change``: what would change the verdict;
- ``vision``: something only a vision model can judge (hands, faces, what a sign says);
- ``unknown``: anything else.

A question that names a tool, an explicit region or an evidence id as well as something
only a vision model can judge is served for the part it names, with ``vision`` set: the
answer says the rest was not understood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sleuth.tools import Box

IntentKind = Literal[
    "why", "evidence", "tools", "zoom", "provenance", "change", "vision", "unknown"
]

ZOOM = "zoom"
PROVENANCE = "provenance"

_EVIDENCE_ID = re.compile(r"\be(\d{1,4})\b", re.IGNORECASE)
_BOX_NUMBER = re.compile(r"\b(?:box|region|candidate)\s*#?\s*(\d{1,3})\b")
_PAIR = r"[\[(]?\s*(\d{1,6})\s*,\s*(\d{1,6})\s*[\])]?"
_PIXEL_BOX = re.compile(_PAIR + r"\s*(?:,|-|–|to|and)?\s*" + _PAIR)
_QUADRANT = re.compile(r"\b(top|upper|bottom|lower)[\s-]*(left|right)\b")
_HALF = re.compile(
    r"\b(left|right|top|bottom|upper|lower)[\s-]*(?:half|side|part|edge|third)\b"
    r"|\bthe\s+(left|right|top|bottom)\b"
)
_BARE_SIDE = re.compile(r"\b(left|right|top|bottom)\b")
_CENTRE = re.compile(r"\b(centre|center|middle|central)\b")

VISION_TOPICS: dict[str, str] = {
    "faces": r"\b(faces?|facial|portraits?)\b",
    "hands": r"\b(hands?|fingers?|thumbs?|palms?|nails?)\b",
    "eyes": r"\b(eyes?|pupils?|irises|gaze)\b",
    "teeth": r"\b(teeth|tooth|mouth|smile|lips)\b",
    "hair and skin": r"\b(hair|skin|ears?)\b",
    "text": r"\b(text|writing|written|letters?|lettering|captions?|logos?|spelling|signage)\b"
    r"|\b(the|a|this|that)\s+signs?\b(?!\s+of\b)",
    "people": r"\b(people|persons?|man|men|woman|women|child|children|kids?|someone)\b",
    "objects": r"\b(objects?|animals?|cars?|buildings?|furniture)\b",
    "lighting and shadows": r"\b(shadows?|lighting|reflections?|perspective)\b",
    "whether it looks natural": r"\b(natural|unnatural|realistic|anatomy|plausible)\b"
    r"|\blooks?\s+(right|wrong|odd|off|weird|strange)\b",
}
"""What only a vision model can judge: topic (as answers name it) to its words."""

_PROVENANCE_WORDS = re.compile(
    r"\b(c2pa|exif|xmp|iptc|metadata|provenance|watermark\w*|generator|manifest|"
    r"content credentials|signed|signature|camera|made with|created with)\b"
)
_CHANGE_WORDS = re.compile(
    r"\b(change|changes|flip|overturn|reverse|sway|convince)\b|what would (it )?take"
    r"|\b(more|less) (sure|confident|certain)\b"
)
_WHY_WORDS = re.compile(
    r"\b(why|explain\w*|reason\w*|justif\w*|basis|summar\w*|overview)\b"
    r"|\bwhat (made|makes|moved|moves|drove|drives|decided)\b|\bhow did you\b"
    r"|\bhow (sure|confident|certain)\b|\bwhat did you find\b|\bthe evidence\b"
)


@dataclass(frozen=True)
class RegionProblem:
    """A region the question names that cannot be used.

    Attributes
    ----------
    kind : {"no_box", "outside", "no_candidates"}
        ``no_box``: a numbered region the case does not have; ``outside``: a pixel box not
        inside the image (or empty); ``no_candidates``: a zoom with no region named and no
        candidate region to fall back on.
    number : int or None
        The box number asked for (``no_box``).
    count : int
        How many numbered regions the case has.
    box : tuple of int or None
        The pixel box asked for (``outside``), as written.
    size : tuple of int
        The image's width and height.
    """

    kind: Literal["no_box", "outside", "no_candidates"]
    number: int | None = None
    count: int = 0
    box: tuple[int, int, int, int] | None = None
    size: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Intent:
    """What a follow-up question asks for (see the module docstring).

    Attributes
    ----------
    kind : IntentKind
    tools : tuple of str
        Tools the question names (by name or alias), for ``tools`` and ``zoom``.
    region : Box or None
        The region it names, in original pixels (None: the whole image).
    problem : RegionProblem or None
        Set when the region it names cannot be used.
    evidence_ids : tuple of str
        Evidence ids it names, normalised (``E7``), in the order written.
    vision : tuple of str
        Topics only a vision model can judge; with another kind, the part not understood.
    defaulted : bool
        The region is candidate region 1, taken because a zoom named none.
    """

    kind: IntentKind
    tools: tuple[str, ...] = ()
    region: Box | None = None
    problem: RegionProblem | None = None
    evidence_ids: tuple[str, ...] = ()
    vision: tuple[str, ...] = ()
    defaulted: bool = False

    @property
    def understood(self) -> bool:
        """Whether the whole question was understood."""
        return self.kind not in ("vision", "unknown") and not self.vision


def read_intent(
    question: str,
    *,
    tools: Sequence[str],
    candidates: Sequence[Box],
    size: tuple[int, int],
) -> Intent:
    """Read what a follow-up question asks for.

    Parameters
    ----------
    question : str
        The investigator's question.
    tools : sequence of str
        The tools it names (``ToolRegistry.named_in``).
    candidates : sequence of Box
        The case's candidate regions; ``box 1`` is the first.
    size : tuple of int
        The image's width and height.

    Returns
    -------
    Intent

    Examples
    --------
    >>> read_intent("why?", tools=(), candidates=[], size=(64, 48)).kind
    'why'
    >>> read_intent("what about the hands?", tools=(), candidates=[], size=(64, 48)).vision
    ('hands',)
    """
    text = question.lower()
    vision = vision_topics(text)
    named = tuple(tools)
    region, problem = read_region(text, candidates=candidates, size=size, loose=bool(named))
    explicit = region is not None or problem is not None
    ids = evidence_ids(text)
    if ids:
        return Intent("evidence", evidence_ids=ids, vision=vision)
    if explicit or (named and set(named) != {ZOOM}):
        if not explicit and set(named) == {PROVENANCE}:
            return Intent("provenance", tools=named, vision=vision)
        kind: IntentKind = "tools" if set(named) - {ZOOM} else "zoom"
        return Intent(kind, tools=named, region=region, problem=problem, vision=vision)
    if vision:
        return Intent("vision", vision=vision)
    if named:  # a zoom on no region: the first candidate, said so in the answer
        if not candidates:
            return Intent("zoom", tools=named, problem=RegionProblem("no_candidates", size=size))
        return Intent("zoom", tools=named, region=candidates[0], defaulted=True)
    if _PROVENANCE_WORDS.search(text):
        return Intent("provenance", tools=(PROVENANCE,))
    if _CHANGE_WORDS.search(text):
        return Intent("change")
    if _WHY_WORDS.search(text):
        return Intent("why")
    return Intent("unknown")


def vision_topics(text: str) -> tuple[str, ...]:
    """Return the topics in ``text`` only a vision model can judge, in :data:`VISION_TOPICS` order.

    Examples
    --------
    >>> vision_topics("do the fingers and the face look natural?")
    ('faces', 'hands', 'whether it looks natural')
    """
    lowered = text.lower()
    return tuple(topic for topic, words in VISION_TOPICS.items() if re.search(words, lowered))


def evidence_ids(text: str) -> tuple[str, ...]:
    """Return the evidence ids ``text`` names, normalised and without repeats.

    Examples
    --------
    >>> evidence_ids("tell me more about e3 and E5, and E3 again")
    ('E3', 'E5')
    """
    return tuple(dict.fromkeys(f"E{int(n)}" for n in _EVIDENCE_ID.findall(text)))


def read_region(
    text: str,
    *,
    candidates: Sequence[Box],
    size: tuple[int, int],
    loose: bool = False,
) -> tuple[Box | None, RegionProblem | None]:
    """Return the region ``text`` names, or the problem with it (both None: none named).

    Read in this order: a pixel box (``x0,y0,x1,y1``, ``[10, 20, 300, 400]``,
    ``(10,20)-(300,400)``), a numbered candidate (``box 2``, ``region 2``; 1-based), a
    quadrant (``top left``, ``bottom-right quarter``), a half (``the left half``,
    ``upper side``, ``the top``), the centre (the middle quarter of the area). With
    ``loose`` (the question names a tool) a bare side word also names a half
    ("ela left"); otherwise "what is left?" would.

    Examples
    --------
    >>> read_region("zoom on the top left quarter", candidates=[], size=(640, 480))[0]
    Box(x0=0, y0=0, x1=320, y1=240)
    >>> read_region("ela on 0,0,700,10", candidates=[], size=(640, 480))[1].kind
    'outside'
    """
    width, height = size
    if match := _PIXEL_BOX.search(text):
        x0, y0, x1, y1 = (int(v) for v in match.groups())
        if 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height:
            return Box(x0=x0, y0=y0, x1=x1, y1=y1), None
        return None, RegionProblem("outside", box=(x0, y0, x1, y1), size=size)
    if match := _BOX_NUMBER.search(text):
        number = int(match.group(1))
        if 1 <= number <= len(candidates):
            return candidates[number - 1], None
        return None, RegionProblem("no_box", number=number, count=len(candidates), size=size)
    if match := _QUADRANT.search(text):
        return _part(width, height, match.group(1), match.group(2)), None
    if match := _HALF.search(text):
        return _part(width, height, match.group(1) or match.group(2)), None
    if _CENTRE.search(text):
        box = Box(x0=width // 4, y0=height // 4, x1=width - width // 4, y1=height - height // 4)
        return box, None
    if loose and (match := _BARE_SIDE.search(text)):
        return _part(width, height, match.group(1)), None
    return None, None


def _part(width: int, height: int, *sides: str) -> Box:
    """Return the half (one side) or quadrant (two sides) of a ``width x height`` image."""
    x0, y0, x1, y1 = 0, 0, width, height
    for side in sides:
        if side == "left":
            x1 = max(1, width // 2)
        elif side == "right":
            x0 = min(width // 2, width - 1)
        elif side in ("top", "upper"):
            y1 = max(1, height // 2)
        else:  # bottom, lower
            y0 = min(height // 2, height - 1)
    return Box(x0=x0, y0=y0, x1=x1, y1=y1)
