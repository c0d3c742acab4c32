"""Checking media files: what the bytes are, how large the picture is, how long the sound.

The type comes from the bytes (their signature), never from the name or the uploader; a
file whose name claims another type (HTML named ``.jpg``) is refused, and so is any type
outside the project's list (HTML, SVG and scripts are on no list: they are never stored,
so never served). Images are opened with Pillow to read their size (after EXIF
orientation: what a browser shows), refusing more pixels than ``media_max_pixels`` (a
decompression bomb); audio with mutagen for its duration. Each check raises an error
naming the file.
"""

from __future__ import annotations

import hashlib
import mimetypes
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qistas.errors import Invalid, TooLarge

CHUNK = 1 << 16
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff")
AUDIO_TYPES = ("audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4")
#: Served inline (shown in the page); anything else is sent as a download.
INLINE_TYPES = frozenset((*IMAGE_TYPES, *AUDIO_TYPES))
DEFAULT_TYPES = INLINE_TYPES
# Names that mean the same type as the sniffed one.
_ALIASES = {"audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/x-flac": "audio/flac",
            "audio/mp3": "audio/mpeg", "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4",
            "image/x-ms-bmp": "image/bmp", "image/pjpeg": "image/jpeg", "audio/x-ogg": "audio/ogg"}
_ORIENTATION = 0x0112
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class MediaInfo:
    sha256: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None


def sniff(head: bytes) -> str | None:
    """The media type the first bytes of a file show, or None (unknown, or text: HTML, SVG, scripts)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"BM") and len(head) > 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"mp4", b"iso", b"M4B"):
        return "audio/mp4"
    return None


def claimed_type(name: str) -> str | None:
    """The type a file's name claims, if its extension names one."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return _ALIASES.get(guessed, guessed) if guessed else None


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def spool(source: Readable, path: Path, *, name: str, max_bytes: int) -> tuple[str, int]:
    """Copy ``source`` to ``path``, hashing it; TooLarge past ``max_bytes``. Returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"{name}: larger than {max_bytes} bytes", details={"file": name, "limit": max_bytes})
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def inspect(path: Path, *, name: str, sha256: str, size: int, types: frozenset[str] | tuple[str, ...],
            max_pixels: int) -> MediaInfo:
    """What the spooled file at ``path`` is; Invalid naming ``name`` when it is not accepted."""
    with path.open("rb") as handle:
        head = handle.read(64)
    found = sniff(head)
    claimed = claimed_type(name)
    if found is None:
        what = f" (named as {claimed})" if claimed else ""
        raise Invalid(f"{name}: not a media file of a known type{what}", details={"file": name})
    if claimed is not None and claimed != found and claimed != "application/octet-stream":
        raise Invalid(f"{name}: the file is {found}, not the {claimed} its name says", details={"file": name})
    if found not in types:
        raise Invalid(f"{name}: {found} is not accepted in this project", details={"file": name, "type": found})
    if found.startswith("image/"):
        width, height = _image_size(path, name=name, max_pixels=max_pixels)
        return MediaInfo(sha256, size, found, width=width, height=height)
    return MediaInfo(sha256, size, found, duration=_duration(path, name=name))


def _image_size(path: Path, *, name: str, max_pixels: int) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 -- Pillow loads its plugins on import

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise Invalid(f"{name}: {width}×{height} pixels is more than {max_pixels}: refused as a "
                                  "possible decompression bomb", details={"file": name})
                orientation = image.getexif().get(_ORIENTATION)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Invalid(f"{name}: too many pixels: refused as a possible decompression bomb",
                      details={"file": name}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Invalid(f"{name}: the image cannot be read", details={"file": name}) from None
    if orientation in _ROTATED:
        width, height = height, width
    return width, height


def _duration(path: Path, *, name: str) -> float | None:
    import mutagen  # noqa: PLC0415

    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError:
        raise Invalid(f"{name}: the audio file cannot be read", details={"file": name}) from None
    length = getattr(getattr(audio, "info", None), "length", None)
    return round(float(length), 3) if isinstance(length, int | float) and length > 0 else None
