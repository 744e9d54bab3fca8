"""On the shared set: the shipped fusion reproduces its leave-one-source-out figures, and
the two cheap attacks (forged camera EXIF, a crop of a pixel or two) never turn an image
the analyst calls AI-generated into a "real" verdict."""

import io
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor

import pytest
from PIL import Image

pytest.importorskip("sklearn")

from sleuth.agent.evidence import to_evidence  # noqa: E402
from sleuth.agent.features import FEATURE_NAMES  # noqa: E402
from sleuth.agent.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse  # noqa: E402
from sleuth.agent.verdict import Evidence, label_for  # noqa: E402
from sleuth.agent.view import CaseView  # noqa: E402
from sleuth.evaluation.earned import fit_pixel_model, leave_one_source_out  # noqa: E402
from sleuth.evaluation.features import collect_features  # noqa: E402
from sleuth.evaluation.sources import read_sources  # noqa: E402
from sleuth.evaluation.training import TrainingData, scores_by_track  # noqa: E402
from sleuth.tools import ToolRegistry, load_image  # noqa: E402
from sleuth.tools.survey import run_survey  # noqa: E402
from tests.conftest import REPO  # noqa: E402

pytestmark = [pytest.mark.data, pytest.mark.slow]
BAND = (0.35, 0.65)


@pytest.fixture(scope="session")
def shared_samples(shared_data):
    return read_sources([shared_data / "manifest.csv", shared_data / "extra" / "manifest.csv"])


@pytest.fixture(scope="session")
def shared_rows(shared_samples):
    cache = REPO / ".cache" / "evaluation" / "features"
    return collect_features(shared_samples, jobs=2, cache=cache)


def test_the_shipped_fusion_reproduces_its_leave_one_source_out_figures(shared_rows):
    doc = _document()
    data = TrainingData.from_rows(shared_rows, FEATURE_NAMES)
    assert len(set(data.groups)) == doc["training"]["groups"]
    candidates = doc["training"]["candidates"]
    c_grid = doc["training"]["C_grid"]
    scores = scores_by_track(data, leave_one_source_out(data, candidates=candidates, c_grid=c_grid))
    for track in ("native", "laundered", "web"):
        want = doc["loso"][track]
        assert scores[track].auroc == pytest.approx(want["auroc"], abs=0.01), track
        assert scores[track].ece == pytest.approx(want["ece"], abs=0.01), track
        assert scores[track].confidently_wrong == pytest.approx(
            want["confidently_wrong"], abs=0.005
        ), track
        assert scores[track].confidently_wrong <= 0.02, track  # the promise, on every track
    refit = fit_pixel_model(data, candidates=candidates, c_grid=c_grid)
    shipped = FusionWeights.load().model
    assert refit.features == shipped.features
    assert list(refit.coefficients) == pytest.approx(list(shipped.coefficients), abs=1e-3)


def test_every_shared_image_gives_the_features_the_fusion_reads(shared_rows):
    assert not [r.key for r in shared_rows if r.error]
    model = FusionWeights.load().model
    for row in shared_rows:
        missing = [f for f in model.features if row.values.get(f) != row.values.get(f)]
        assert not missing, (row.key, row.track, missing)


def test_forged_exif_and_tiny_crops_never_turn_an_ai_verdict_into_real(shared_samples):
    fakes = [str(s.path) for s in shared_samples if s.y == 1]
    with ProcessPoolExecutor(2) as pool:
        outcomes = [o for o in pool.map(_attack, fakes, chunksize=4) if o is not None]
    assert len(outcomes) >= 50  # the AI images called ai_generated natively
    changes = {}
    for attack in ("forged camera EXIF", "1 px crop", "7x1 px crop"):
        labels = [o[attack] for o in outcomes if attack in o]
        changes[attack] = sum(label != "ai_generated" for label in labels)
        assert "real" not in labels, attack
    forged = [o["forged camera EXIF"] for o in outcomes if "forged camera EXIF" in o]
    assert forged and set(forged) == {"ai_generated"}  # forged EXIF changes no label at all


def _p_ai(data: bytes) -> float:
    """The analyst's fused probability from the survey (regional re-runs add no terms)."""
    registry = ToolRegistry.discover()
    evidence: list[Evidence] = []
    for result in run_survey(registry, load_image(data)).results.values():
        evidence += to_evidence(result, CaseView({}), offset=len(evidence), region=None, step=0)
    return fuse(evidence)


def _attack(path: str) -> dict[str, str] | None:
    with open(path, "rb") as fh:
        raw = fh.read()
    if label_for(_p_ai(raw), BAND) != "ai_generated":
        return None
    out = {}
    forged = _with_camera_exif(raw)
    if forged is not None:
        out["forged camera EXIF"] = label_for(_p_ai(forged), BAND)
    image = load_image(raw)
    for attack, (dx, dy) in (("1 px crop", (1, 1)), ("7x1 px crop", (7, 1))):
        out[attack] = label_for(_p_ai(_cropped(image, dx, dy)), BAND)
    return out


CAMERA_EXIF = {
    0x010F: "Canon",
    0x0110: "Canon EOS 5D Mark IV",
    0x0131: "Firmware Version 1.2.1",
    0x0132: "2024:05:11 14:02:31",
}
EXIF_IFD = {0x829A: (1, 250), 0x829D: (28, 10), 0x8827: 400, 0x9003: "2024:05:11 14:02:31",
            0x920A: (50, 1)}  # fmt: skip


def _forged_exif(raw: bytes) -> bytes:
    """The file's own EXIF with camera tags added (none of its own tags overwritten)."""
    with Image.open(io.BytesIO(raw)) as img:
        exif = img.getexif()
    for tag, value in CAMERA_EXIF.items():
        exif.setdefault(tag, value)
    ifd = exif.get_ifd(0x8769)
    for tag, value in EXIF_IFD.items():
        ifd.setdefault(tag, value)
    return exif.tobytes()


def _with_camera_exif(raw: bytes) -> bytes | None:
    """The same file with forged camera EXIF in place of its own, pixels unchanged.

    A forger merges camera tags into whatever EXIF the file has (the generator's own
    fields stay), so that block replaces the file's EXIF; every other byte is kept.
    """
    blob = _forged_exif(raw)
    if raw[:2] == b"\xff\xd8":
        segment = b"\xff\xe1" + struct.pack(">H", len(blob) + 2) + blob
        return raw[:2] + segment + _without_jpeg_exif(raw[2:])
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        body = blob[6:] if blob.startswith(b"Exif\x00\x00") else blob
        chunk = struct.pack(">I", len(body)) + b"eXIf" + body
        chunk += struct.pack(">I", zlib.crc32(b"eXIf" + body))
        end_of_header = 8 + 25  # signature, then the IHDR chunk
        return raw[:end_of_header] + chunk + _without_png_exif(raw[end_of_header:])
    return None


def _without_jpeg_exif(rest: bytes) -> bytes:
    """Drop APP1 Exif segments from the markers that follow SOI."""
    out, pos = bytearray(), 0
    while pos + 4 <= len(rest) and rest[pos] == 0xFF and rest[pos + 1] not in (0xDA, 0xD9):
        length = struct.unpack(">H", rest[pos + 2 : pos + 4])[0]
        segment = rest[pos : pos + 2 + length]
        if not (rest[pos + 1] == 0xE1 and segment[4:10] == b"Exif\x00\x00"):
            out += segment
        pos += 2 + length
    return bytes(out) + rest[pos:]


def _without_png_exif(chunks: bytes) -> bytes:
    out, pos = bytearray(), 0
    while pos + 8 <= len(chunks):
        length, kind = struct.unpack(">I4s", chunks[pos : pos + 8])
        if kind != b"eXIf":
            out += chunks[pos : pos + 12 + length]
        pos += 12 + length
    return bytes(out) + chunks[pos:]


def _cropped(image, dx: int, dy: int) -> bytes:
    """The picture minus ``dx`` columns on the right and ``dy`` rows at the bottom, saved
    as the format it came in (lossless files stay lossless, the rest JPEG quality 95)."""
    width, height = image.size
    picture = Image.fromarray(image.full).crop((0, 0, width - dx, height - dy))
    buf = io.BytesIO()
    if image.format in ("PNG", "BMP", "TIFF"):
        picture.save(buf, format="PNG")
    else:
        picture.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _document():
    import json
    from importlib import resources

    text = resources.files("sleuth.agent").joinpath("weights", DEFAULT_WEIGHTS).read_text()
    return json.loads(text)
