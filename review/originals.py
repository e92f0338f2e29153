"""A case's original as the browser may show it: scan pages as PNG images (PDF pages rendered), other
files only as downloads, and an e-mail's headers, text body and attachments list."""

from __future__ import annotations

import email
import email.policy
import io
from dataclasses import dataclass, field

import pypdfium2 as pdfium
from PIL import Image, ImageSequence

#: images a browser shows inline; anything else is served as an attachment
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MAX_SIDE = 2000


def page_png(data: bytes, media_type: str, number: int) -> bytes | None:
    """Page ``number`` (1-based) of a scan as a PNG, or None if the original has no such page."""
    if media_type == "application/pdf" or data[:5] == b"%PDF-":
        document = pdfium.PdfDocument(data)
        try:
            if not 1 <= number <= len(document):
                return None
            page = document[number - 1]
            width, height = page.get_size()
            scale = min(2.0, _MAX_SIDE / max(width, height, 1.0))
            image = page.render(scale=scale).to_pil()
        finally:
            document.close()
    else:
        with Image.open(io.BytesIO(data)) as opened:
            frames = list(ImageSequence.Iterator(opened))
            if not 1 <= number <= len(frames):
                return None
            image = frames[number - 1].copy()
        image.thumbnail((_MAX_SIDE, _MAX_SIDE))
        if image.mode not in ("RGB", "L", "RGBA"):
            image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class ShownEmail:
    """An e-mail as the reviewer reads it: headers and plain text, never its HTML."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    attachments: list[str] = field(default_factory=list)


SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Subject", "Message-ID", "Reply-To")


def show_email(data: bytes) -> ShownEmail:
    """Headers, the text body (the HTML part's source as text when there is no plain part) and the
    names of the attachments."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    shown = ShownEmail([(name, str(message.get(name, ""))) for name in SHOWN_HEADERS if message.get(name)])
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        try:
            shown.body = str(body.get_content())
        except (LookupError, ValueError):  # an unknown or lying charset: show what can be decoded
            payload = body.get_payload(decode=True)
            shown.body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    for part in message.iter_attachments():
        shown.attachments.append(part.get_filename() or part.get_content_type())
    return shown
