"""Imported once by the decoding forkserver (:mod:`sleuth.tools.worker`): every format plugin.

Pillow imports its plugins on first use, and pillow-heif registers its opener when asked;
together about 0.1 s. Done here, in the forkserver, each decoding worker it forks starts
with them loaded instead of paying that on every decode. A first decode of a small JPEG
and PNG here also does Pillow's own first-use work (lazy imports, EXIF tables) once.
"""

import io

import numpy as np
from PIL import Image

from sleuth.tools.decode import decode_pixels
from sleuth.tools.formats import accepted_formats


def _warm_up() -> None:
    accepted = accepted_formats()
    pixels = np.zeros((16, 16, 3), np.uint8)
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        decode_pixels(
            buf.getvalue(),
            accepted=accepted,
            max_pixels=256,
            pages=None,
            allocate=lambda shape: np.empty(shape, np.uint8),
        )


_warm_up()
