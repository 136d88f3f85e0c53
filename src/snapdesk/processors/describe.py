"""Descriptions of pictures: what a photo shows, through any vision model, or offline.

The input is always the 600 px thumbnail (WebP bytes), never the original, plus what the owner
knows of the document: its name, its size in pixels, a few EXIF fields, and its OCR text.

``describe_offline`` needs no model: the dominant colours (a palette with names and shares),
brightness and colourfulness, orientation, and tags from the metadata (camera, night, the format:
"portrait format" and so on, screenshot, document) and from the OCR text; labelled ``source: offline``, as the extractive
summary is. ``describe_llm`` sends the picture as a data URL to an OpenAI-compatible
chat-completions endpoint (OpenAI, OpenRouter, Ollama, llama.cpp's server, LM Studio), asks for
a JSON object of the design's fields (description, detailed description, tags, categories,
objects, colours, mood, style, composition, searchable text) with a JSON schema as structured
output, validates the reply, and gives an invalid one a repair attempt. The offline measurements
are added to a model's answer, so both return the same shape:

    {"description", "detailed_description", "tags", "categories", "objects", "colors": [names],
     "palette": [{"name", "hex", "share"}], "brightness", "colorfulness", "orientation", "mood",
     "style", "composition", "searchable_text", "model", "source": "llm" | "offline", "tokens"}

Errors, Retry-After and the hiding of credentials are those of every endpoint job (``llm.py``).
"""

from __future__ import annotations

import base64
import colorsys
import io
import re
from collections import Counter
from typing import Any

import numpy as np
from openai.types.chat import ChatCompletionMessageParam
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field, ValidationError, field_validator

from . import llm, summary
from .errors import PermanentError
from .metadata import camera_name

#: The fields a model is asked for, as a JSON schema (the structured-output request).
FIELDS = ("description", "detailed_description", "tags", "categories", "objects", "colors", "mood", "style",
          "composition", "searchable_text")

SYSTEM_PROMPT = """You look at one picture and describe it for a photo library's search.
Reply with ONE JSON object and nothing else, with exactly these keys:
  "description": one sentence saying what the picture shows,
  "detailed_description": three or four sentences with the details a person would search for,
  "tags": up to 15 short lowercase keywords,
  "categories": up to 3 of: people, animals, nature, landscape, city, architecture, food, vehicle, document,
                screenshot, art, object, event, sport, other,
  "objects": up to 10 things visible in it,
  "colors": up to 5 colour names, the dominant first,
  "mood": a word or two, "style": a word or two (photo, illustration, scan, screenshot...),
  "composition": a short phrase (close-up, wide shot, portrait orientation...),
  "searchable_text": one line of words a person might type to find this picture."""


class Description(BaseModel):
    """What a vision model must return (lenient about lists given as strings)."""

    description: str = Field(min_length=1, max_length=2000)
    detailed_description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list)
    colors: list[str] = Field(default_factory=list)
    mood: str = ""
    style: str = ""
    composition: str = ""
    searchable_text: str = Field(default="", max_length=2000)

    @field_validator("tags", "categories", "objects", "colors", mode="before")
    @classmethod
    def _words(cls, value: Any) -> list[str]:
        if isinstance(value, str):
            value = re.split(r"[,;]", value)
        words = [str(v.get("name", "")) if isinstance(v, dict) else str(v) for v in value or []]
        return [w.strip().lower()[:60] for w in words if w and w.strip()][:20]

    @field_validator("mood", "style", "composition", "detailed_description", "searchable_text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return "" if value is None else str(value)


def response_format() -> dict[str, Any]:
    """The structured-output request: a JSON schema of ``Description``."""
    props = {name: {"type": "array", "items": {"type": "string"}} if name in ("tags", "categories", "objects", "colors")
             else {"type": "string"} for name in FIELDS}
    return {"type": "json_schema", "json_schema": {"name": "picture_description", "strict": True, "schema": {
        "type": "object", "properties": props, "required": list(FIELDS), "additionalProperties": False}}}


# -- offline ---------------------------------------------------------------------------
#: Hue ranges (degrees, upper bound) and their names, for saturated colours.
_HUES = ((15, "red"), (40, "orange"), (68, "yellow"), (160, "green"), (195, "cyan"), (255, "blue"),
         (290, "purple"), (335, "pink"), (360, "red"))


def colour_name(rgb: tuple[int, int, int]) -> str:
    """A plain English name for a colour ("red", "dark blue", "white", "brown")."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    if v < 0.16:
        return "black"
    if s < 0.18 or (s < 0.3 and v < 0.35):
        return "white" if v > 0.85 else "gray" if v > 0.3 else "black"
    hue = h * 360
    name = next(n for bound, n in _HUES if hue < bound)
    if name in ("orange", "red", "yellow") and v < 0.55 and s > 0.3 and name != "red":
        return "brown"
    if name == "orange" and v < 0.7 and s > 0.5:
        return "brown"
    if name == "pink" and v < 0.45:
        return "purple"
    return f"dark {name}" if v < 0.4 else name


def palette(image: Image.Image, colours: int = 5) -> list[dict[str, Any]]:
    """The dominant colours of an image: up to ``colours`` entries {name, hex, share}, largest
    share first, with colours of the same name merged."""
    small = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    quantised = small.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    pal: list[int] = list(quantised.getpalette() or [])
    counts = sorted(quantised.getcolors() or [], reverse=True)
    total = sum(n for n, _ in counts) or 1
    merged: dict[str, dict[str, Any]] = {}
    for n, pixel in counts:
        index = int(pixel)  # type: ignore[call-overload]  # a palette index in a "P" image
        rgb = (pal[index * 3], pal[index * 3 + 1], pal[index * 3 + 2])
        name = colour_name(rgb)
        entry = merged.setdefault(name, {"name": name, "hex": "#%02x%02x%02x" % rgb, "share": 0.0})
        entry["share"] += n / total
    out = sorted(merged.values(), key=lambda e: -e["share"])[:colours]
    return [{**e, "share": round(e["share"], 3)} for e in out if e["share"] >= 0.02]


def measures(image: Image.Image) -> tuple[float, float]:
    """Brightness (mean luma, 0-1) and colourfulness (Hasler and Suesstrunk's metric, scaled to 0-1)."""
    rgb = np.asarray(image.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    brightness = float((0.299 * r + 0.587 * g + 0.114 * b).mean() / 255)
    rg, yb = r - g, 0.5 * (r + g) - b
    m = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return round(brightness, 3), round(min(1.0, m / 150), 3)


def orientation(width: int | None, height: int | None) -> str:
    if not width or not height:
        return "unknown"
    ratio = width / height
    return "square" if 0.95 <= ratio <= 1.05 else "landscape" if ratio > 1 else "portrait"


#: The tag of each orientation: the picture's format, never a word of what it shows ("square" is a
#: shape, "landscape" a scene, "portrait" a photo of a person).
#: The search index keeps each as one word (``engine.meaning.index_words``).
FORMAT_TAGS = {"square": "square format", "landscape": "landscape format", "portrait": "portrait format"}


#: Common screen sizes (a PNG of exactly such a size, from no camera, is likely a screenshot).
SCREEN_SIZES = frozenset({(1024, 768), (1280, 720), (1280, 800), (1366, 768), (1440, 900), (1536, 864), (1600, 900),
                          (1680, 1050), (1920, 1080), (1920, 1200), (2048, 1536), (2560, 1440), (2560, 1600),
                          (2736, 1824), (2880, 1800), (3024, 1964), (3456, 2234), (3840, 2160), (750, 1334),
                          (828, 1792), (1080, 1920), (1080, 2340), (1080, 2400), (1125, 2436), (1170, 2532),
                          (1179, 2556), (1242, 2688), (1284, 2778), (1290, 2796), (1440, 3200)})
_SCREEN_NAME = re.compile(r"screen ?shot|screenshot|scrnli|bildschirmfoto|capture d.?[eé]cran", re.I)


def metadata_tags(name: str, width: int | None, height: int | None, exif: dict[str, str], brightness: float,
                  colorfulness: float, flat_share: float, text: str) -> list[str]:
    """Tags from what is known without a model: the camera, the time and light, the shape, and the text."""
    tags: list[str] = []
    camera = " ".join(str(exif.get(k) or "").strip() for k in ("make", "model")).strip()
    if camera:
        tags += ["camera", "photo"]
        tags += [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9-]+", str(exif.get("make") or ""))[:1]]
    hour = _hour(exif.get("datetime"))
    if brightness < 0.22 or (hour is not None and (hour >= 21 or hour < 5) and brightness < 0.4):
        tags.append("night")
    elif brightness > 0.75:
        tags.append("bright")
    shape = orientation(width, height)
    if shape in FORMAT_TAGS:
        tags.append(FORMAT_TAGS[shape])
    words = re.findall(r"[A-Za-z]{3,}", text)
    screenshot = bool(_SCREEN_NAME.search(name)) or (not camera and name.lower().endswith(".png")
                                                     and ((width, height) in SCREEN_SIZES or (height, width) in SCREEN_SIZES))
    if screenshot:
        tags.append("screenshot")
    page = colorfulness < 0.15 and brightness > 0.6 and flat_share > 0.5  # dark text on a plain light ground
    if not screenshot and (len(words) >= 25 or (len(words) >= 3 and page)):
        tags.append("document")
    if len(words) >= 3:
        tags.append("text")
        lowered = Counter(w.lower() for w in summary.WORD_RE.findall(text))
        priced = sum(1 for line in text.splitlines() if summary.AMOUNT_RE.search(line))
        kind = summary._document_type(lowered, priced)
        if kind not in ("other", "article"):
            tags.append(kind)
    if colorfulness < 0.04:
        tags.append("black and white")
    elif colorfulness > 0.45:
        tags.append("colourful")
    return list(dict.fromkeys(tags))


def _hour(value: object) -> int | None:
    match = re.match(r"\d{4}[:-]\d{2}[:-]\d{2}[ T](\d{2})", str(value or ""))
    return int(match.group(1)) if match else None


def _open(image_bytes: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(image_bytes))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PermanentError(f"the thumbnail to describe cannot be read: {exc}") from None
    if image.width * image.height > 4_000_000:
        raise PermanentError("the picture to describe is larger than a thumbnail (at most 2000 x 2000)")
    return image


def describe_offline(image_bytes: bytes, *, name: str = "", width: int | None = None, height: int | None = None,
                     exif: dict[str, str] | None = None, text: str = "") -> dict[str, Any]:
    """The description fields from the pixels and the metadata alone: no model, no network."""
    image = _open(image_bytes)
    width, height = width or image.width, height or image.height
    colours = palette(image)
    brightness, colorfulness = measures(image)
    tags = metadata_tags(name, width, height, exif or {}, brightness, colorfulness,
                         colours[0]["share"] if colours else 0.0, text)
    names = [c["name"] for c in colours]
    light = "dark" if brightness < 0.3 else "bright" if brightness > 0.7 else "mid-toned"
    tone = "black-and-white" if "black and white" in tags else "colourful" if colorfulness > 0.45 else "muted"
    what = ("screenshot" if "screenshot" in tags else "document" if "document" in tags else
            "photo" if "camera" in tags else "picture")
    shape = orientation(width, height)
    description = (f"A {light}, {tone} {what}{' in ' + FORMAT_TAGS[shape] if shape in FORMAT_TAGS else ''}, mostly "
                   f"{_join(names[:3]) or 'without a dominant colour'}.")
    camera = camera_name(str((exif or {}).get("make") or "").strip() or None,
                         str((exif or {}).get("model") or "").strip() or None)
    details = [description]
    if camera:
        details.append(f"Taken with a {camera}.")
    words = " ".join(text.split()[:30])
    if words:
        details.append(f"Text in it: {words}.")
    return {
        "description": description, "detailed_description": " ".join(details), "tags": tags,
        "categories": [c for c in ("document", "screenshot") if c in tags], "objects": [],
        "colors": names, "palette": colours, "brightness": brightness, "colorfulness": colorfulness,
        "orientation": shape, "mood": "", "style": what, "composition": FORMAT_TAGS.get(shape, ""),
        "searchable_text": " ".join(dict.fromkeys([*names, *tags, what])),
        "model": "offline", "source": "offline", "tokens": 0,
    }


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else ""


# -- through a model -------------------------------------------------------------------
class _SchemaClient:
    """The client every endpoint job uses (``llm.client``), with the structured-output request added
    to every chat completion (so its error handling is theirs, not a copy of it)."""

    def __init__(self, client: Any, extra: dict[str, Any]):
        create = client.chat.completions.create
        self.chat: Any = type("Chat", (), {})()
        self.chat.completions = type("Completions", (), {})()
        self.chat.completions.create = lambda **kw: create(**kw, **extra)


def describe_llm(image_bytes: bytes, *, base_url: str, api_key: str, model: str, timeout: float = 120.0,
                 name: str = "", width: int | None = None, height: int | None = None,
                 exif: dict[str, str] | None = None, text: str = "") -> dict[str, Any]:
    """Describe the picture with the vision model at ``base_url``, the offline measurements added."""
    offline = describe_offline(image_bytes, name=name, width=width, height=height, exif=exif, text=text)
    url = "data:image/webp;base64," + base64.b64encode(image_bytes).decode("ascii")
    hint = f"File name: {name}." + (f" Text found in it: {' '.join(text.split()[:80])}" if text.strip() else "")
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "text", "text": hint}, {"type": "image_url", "image_url": {"url": url}}]}]
    base = llm.client(base_url, api_key, timeout)
    client: Any = _SchemaClient(base, {"response_format": response_format()})
    tokens, problem, repaired = 0, None, False
    while True:  # the answer; once without structured output if the server refuses it; one repair
        try:
            reply, used = llm.complete(client, model, messages, base_url)
        except PermanentError as exc:
            if client is not base and "400" in str(exc) and re.search(r"response_format|json_schema|schema", str(exc),
                                                                      re.I):
                client = base  # a server without structured output: the prompt alone asks for JSON
                continue
            raise
        tokens += used
        try:
            answer = Description.model_validate(llm.parse_json(reply))
        except (ValueError, ValidationError) as exc:
            problem = llm.explain(exc)
            if repaired:
                break
            repaired = True
            messages = messages + [{"role": "assistant", "content": reply},
                                   {"role": "user", "content": f"That reply was not valid: {problem}. Reply with "
                                                               "only the corrected JSON object, with the keys asked for."}]
            continue
        data = answer.model_dump()
        data["tags"] = list(dict.fromkeys([*data["tags"], *offline["tags"]]))
        data["colors"] = data["colors"] or offline["colors"]
        return {**data, **{k: offline[k] for k in ("palette", "brightness", "colorfulness", "orientation")},
                "model": model, "source": "llm", "tokens": tokens}
    raise PermanentError(f"the model {model} did not return a valid description, even when asked to repair it: "
                         f"{problem}", advice=model_advice(model))


def model_advice(model: str) -> str:
    """What to do when a model's answers do not follow the schema: the file is not at fault."""
    return (f"the file is fine, the model {model} is not: choose a vision model that follows JSON schemas "
            "(SNAPDESK_VISION_MODEL, or the vision model in Settings), then run it again (snapdesk retry --force, "
            "or Reprocess in the window)")


def check_vision(base_url: str, api_key: str, model: str, timeout: float = 30.0) -> str:
    """Describe a tiny picture: what the Settings dialog's Test endpoint shows for descriptions."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "WEBP")
    result = describe_llm(buf.getvalue(), base_url=base_url, api_key=api_key, model=model, timeout=timeout,
                          name="test.webp")
    return f"{model} described a test picture: {result['description'][:60]}"
