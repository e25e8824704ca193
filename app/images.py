"""Checking uploaded pictures and storing them without their metadata (EXIF, GPS)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from flask import current_app, has_app_context
from PIL import Image, UnidentifiedImageError

from app.errors import InvalidInput
from app.i18n import gettext as _

FORMATS = {"JPEG": "jpg", "PNG": "png"}
DEFAULT_MAX_PIXELS = 40_000_000


def max_pixels() -> int:
    """The largest picture accepted, in pixels (HOTNET_IMAGE_MAX_MEGAPIXELS)."""
    if has_app_context():
        return int(current_app.config.get("HOTNET_IMAGE_MAX_MEGAPIXELS", 40) * 1_000_000)
    return DEFAULT_MAX_PIXELS


def clean_image(raw: bytes, max_bytes: int, field: str = "image") -> tuple[bytes, str]:
    """Re-encode a JPEG or PNG so that nothing but the pixels is kept; returns (data, ext)."""
    if not raw:
        raise InvalidInput(_("画像ファイルが空です。"), field=field)
    if len(raw) > max_bytes:
        raise InvalidInput(_("画像が大きすぎます（%(mb)d MBまで）。", mb=max_bytes // (1024 * 1024)),
                           field=field)
    limit = max_pixels()
    too_big = InvalidInput(_("画像の縦横が大きすぎます（%(megapixels)d00万画素まで）。カメラやスマートフォンで小さいサイズにしてから選んでください。",
                             megapixels=limit // 1_000_000), field=field)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns below twice its limit: make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                kind = image.format
                if kind not in FORMATS:
                    raise InvalidInput(_("JPEG か PNG の画像を選んでください。"), field=field)
                # The size comes from the header: refuse before a single pixel is decoded.
                width, height = image.size
                if width * height > limit:
                    raise too_big
                image.load()
                pixels = image.convert("RGBA" if kind == "PNG" else "RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_big from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(_("画像として読み取れませんでした。JPEG か PNG を選んでください。"),
                           field=field) from exc
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    if kind == "JPEG":
        clean.save(out, "JPEG", quality=85, optimize=True)
    else:
        clean.save(out, "PNG", optimize=True)
    return out.getvalue(), FORMATS[kind]


def store(folder: Path, stem: str, data: bytes, ext: str) -> str:
    """Write the picture (replacing any earlier one of the same stem); returns its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}.*"):
        old.unlink()
    name = f"{stem}.{ext}"
    tmp = folder / (name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(folder / name)
    return name
