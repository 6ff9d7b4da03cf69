"""A scalp photograph as a site uploads it, made safe to keep: decoded by Pillow within a pixel limit (a
decompression bomb is refused before it is decoded in full), its pixels re-encoded into a new file that carries no
metadata (EXIF, GPS, XMP, ICC, text chunks), its SHA-256 taken of what is stored, and a thumbnail for the casebook.
The bytes are never logged: only their size, type and hash."""

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from shared.contracts.photographs import MAX_BYTES, MAX_PIXELS, MEDIA_TYPES

THUMBNAIL_PIXELS = (320, 320)
BYTES = "application/octet-stream"


class PhotographRefused(Exception):
    """Not taken: the status, the problem type and what is wrong, for the person who sent it."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


@dataclass(frozen=True)
class Cleaned:
    image: bytes
    thumbnail: bytes
    media_type: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image).hexdigest()


def cleaned(data: bytes, media_type: str) -> Cleaned:
    """The image re-encoded without its metadata, or PhotographRefused: over 20 MB (413), said to be neither a JPEG
    nor a PNG (415), not an image, a damaged one or not the one it says it is (422), a decompression bomb (422). Sent
    as `application/octet-stream` (as a generated client sends bytes), it is whichever of the two it is."""
    if len(data) > MAX_BYTES:
        raise PhotographRefused(413, "payload-too-large", f"a photograph is at most {MAX_BYTES} bytes")
    said = media_type.split(";")[0].strip().lower()
    if said != BYTES and said not in MEDIA_TYPES:
        raise PhotographRefused(415, "unsupported-media-type", "a photograph is sent as image/jpeg or image/png")
    formats = list(MEDIA_TYPES.values()) if said == BYTES else [MEDIA_TYPES[said]]
    try:
        with warnings.catch_warnings():
            # Pillow warns of an image over its limit and refuses one over twice it: both refused here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=formats) as opened:
                kind = str(opened.format)
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise PhotographRefused(
                        422, "decompression-bomb", f"{width}×{height} pixels is over {MAX_PIXELS} pixels"
                    )
                opened.load()
                upright = ImageOps.exif_transpose(opened)  # the way it was taken, before its EXIF is dropped
    except PhotographRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
        raise PhotographRefused(422, "decompression-bomb", "the image decodes to too many pixels") from bomb
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as bad:
        raise PhotographRefused(
            422, "not-an-image", f"the file is not a readable {' or '.join(formats)} image"
        ) from bad
    mode = "RGBA" if kind == "PNG" and "A" in upright.getbands() else "RGB"
    pixels = upright.convert(mode)
    # A new image from the pixels alone: nothing of the upload's metadata can come along.
    fresh = Image.frombytes(mode, pixels.size, pixels.tobytes())
    stored = io.BytesIO()
    fresh.save(stored, format=kind, **({"quality": 95} if kind == "JPEG" else {"optimize": True}))
    small = fresh.convert("RGB")
    small.thumbnail(THUMBNAIL_PIXELS)
    thumbnail = io.BytesIO()
    small.save(thumbnail, format="JPEG", quality=85)
    return Cleaned(stored.getvalue(), thumbnail.getvalue(), f"image/{kind.lower()}", *fresh.size)
