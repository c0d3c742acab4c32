"""Small media made in the test: a WAV of tones and silences, a PNG of a page with lines."""

from __future__ import annotations

import io
import math
import struct
import wave

from PIL import Image, ImageDraw

RATE = 8000


def wav(pattern: tuple[tuple[float, float], ...] = ((1.0, 440.0), (1.0, 0.0), (1.0, 660.0)), rate: int = RATE) -> bytes:
    """Mono 16-bit PCM: each ``(seconds, hertz)`` a tone (0 Hz: silence), one after the other."""
    frames = bytearray()
    for seconds, hertz in pattern:
        for n in range(int(seconds * rate)):
            value = 0.6 * math.sin(2 * math.pi * hertz * n / rate) if hertz else 0.0
            frames += struct.pack("<h", int(value * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(bytes(frames))
    return out.getvalue()


def page_png(width: int = 400, height: int = 300, lines: tuple[tuple[int, int, int, int], ...] = (
        (40, 40, 360, 70), (40, 120, 300, 150), (40, 200, 340, 230))) -> bytes:
    """A white page with dark bars where lines of text would be (``x1, y1, x2, y2`` each)."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x1, y1, x2, y2 in lines:
        draw.rectangle((x1, y1, x2, y2), fill=(60, 60, 70))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
