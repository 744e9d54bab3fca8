"""Images for the workbench tests: a photo with camera EXIF, as JPEG bytes."""

from __future__ import annotations

import io

from PIL import Image

from tests.conftest import photo

MAKE = "Nikon<b>Corp"
MODEL = "D750 & friends"


def camera_jpeg(seed: int = 0, size: tuple[int, int] = (480, 360)) -> bytes:
    """Return a JPEG with EXIF Make and Model (with markup in them) and a GPS position."""
    picture = Image.fromarray(photo(seed, size))
    exif = Image.Exif()
    exif[0x010F] = MAKE
    exif[0x0110] = MODEL
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()
