"""Images and documents for Gemini: inline data, or file data by URL. Pure.

Google's "File input methods" page (Gemini API, "External HTTP / Signed URLs"):
"You can pass publicly accessible HTTPS URLs or pre-signed URLs ... directly in your
generation request. The Gemini API will fetch the content securely during
processing", up to 100 MB, by putting the URL in `file_uri`; "Gemini 2.0 family of
models are not supported". The API reference marks FileData's `mimeType` required,
and that page lists image/png, image/jpeg, image/webp and image/bmp for URLs.

So an image or PDF given by URL reaches Gemini as `fileData`, and Google fetches it:
modelmux never does, so a client cannot make the gateway reach loopback or private
addresses. Where Gemini cannot take the URL (not https, a Gemini 2.0 or earlier
model, an image whose type its URL does not show), the request is refused with a
400 naming the field, rather than the image turned into a note the model reads as
text.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from modelmux.errors import GatewayError
from modelmux.translate.effort import gemini_version

# Anthropic's image types, and the others Gemini reads (its vision and URL docs).
IMAGE_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
    ".bmp": "image/bmp", ".heic": "image/heic", ".heif": "image/heif",
}  # fmt: skip
PDF = "application/pdf"  # the only document type Anthropic takes by URL

Part = dict[str, Any]


def inline(kind: str, source: dict[str, Any]) -> Part:
    """A base64 image or PDF as Gemini's inline data."""
    mime = source.get("media_type") or ("image/jpeg" if kind == "image" else PDF)
    return {"inlineData": {"mimeType": mime, "data": source.get("data", "")}}


def by_url(kind: str, url: Any, model: str, where: str) -> Part:
    """An image or PDF the client gave by URL, as file data Gemini fetches itself.
    Raises GatewayError (400) naming `where` when Gemini cannot take it."""
    if not _https(url):
        raise GatewayError(400, f"{where}: Gemini fetches only https URLs, not {url!r}; give an https URL "
                                f"or send the {kind} as base64")
    found = gemini_version(model)
    if found is not None and found < (2, 5):
        raise GatewayError(400, f"{where}: {model} does not take files by URL (Google: the Gemini 2.0 "
                                f"family is not supported); send the {kind} as base64")
    mime = PDF if kind == "document" else _image_type(url)
    if mime is None:
        raise GatewayError(400, f"{where}: Gemini needs the type of an image given by URL, and {url} does not "
                                f"end in one of {', '.join(IMAGE_TYPES)}; send the image as base64")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _https(url: Any) -> bool:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        return parts is not None and parts.scheme.lower() == "https" and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed [IPv6] host
        return False


def _image_type(url: str) -> str | None:
    path = urlsplit(url).path.lower()
    return next((mime for suffix, mime in IMAGE_TYPES.items() if path.endswith(suffix)), None)
