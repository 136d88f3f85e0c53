"""Generated OCR pages whose text is known: the data benchmarks/ocr.py and tests/integration/test_ocr.py read.

A page comes from a seed and nothing else, so the same seed is the same page on any machine with
the same fonts. What a seed chooses, each independently:

* the font: any TrueType font the machine has (``fc-list``, else /usr/share/fonts), regular,
  bold, oblique, condensed, light or monospaced alike;
* the size: 9 to 14 pt at 200 dpi (25 to 39 px);
* the line length: 30 to 110 characters (fewer when the font is too wide for the page);
* the text: ordinary English words with names, numbers with thousands separators, prices, dates,
  percentages and punctuation;
* the scan: skew up to 1.6 degrees either way, some blur, grain and dust, saved as PNG or as JPEG
  of quality 55 to 95 (and decoded again, so the artefacts are in the pixels).

Seeds are split once and for all: ``TUNING_SEEDS`` are what anyone may look at while tuning the
OCR; ``HELD_OUT_SEEDS`` are only for reporting (benchmarks/ocr.py), and tests draw from
``TEST_SEEDS``. Neither of the last two was used to choose any setting.
"""

from __future__ import annotations

import io
import random
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PAGE_SIZE = (1700, 2200)  # US Letter at 200 dpi
TUNING_SEEDS = range(100, 200)
HELD_OUT_SEEDS = range(5000, 6000)
TEST_SEEDS = range(7000, 8000)

WORDS = """the of and to in is was that for it with as his on be at by had are but from or have an they which
one you were all her she there would their we him been has when who will more no if out so said what up its about
into than them can only other new some could time these two may then do first any my now such like our over man me
even most made after also did many before must through back years where much your way well down should because each
just those people how too little state good very make world still own see men work long get here between both life
being under never day same another know while last might us great old year off come since against go came right used
take three states himself few house use during without again place around however home small found thought went say
part once general high upon school every does got left number course until always away something fact though water
less public put think almost hand enough far took head yet government system better set told nothing night end why
called eyes find going look asked later knew point next program city business give group toward young days let room
president side social given present several order national possible rather second face per among form important often
things looked early white case become large big need four within felt children along saw best church ever least power
development light thing seemed family interest want members mind country area others done turned although open problem
sense service certain kind different thus began door help means whole matter perhaps itself times law human line above
name example action company hands local show whether five history gave today either act feet across taken past quite
anything seen having death experience body word half really week field car words already themselves information tell
together college shall money period held keep sure probably free seems political real behind cannot question air office
making brought whose special heard major problems ago became federal moment study available known result street
economic position reason change south board individual job society areas west close turn love community true court
force full seem wife age policy voice center woman control common necessary following front sometimes clear further
land run students provide feel party able mother music education university child effect level stood town short
morning total outside rate figure class art century north usually plan leave evidence receipt invoice account balance
payment amount due date customer reference transfer shipment warehouse quarterly estimate contractor deposit insurance
""".split()
NAMES = """Harris Okafor Lindqvist Moreau Tanaka Castillo Novak Brennan Ferreira Kowalski Haddad Whitfield Sorensen
Abernathy Quintero Yamamoto Delacroix Fitzgerald Oyelaran Petrov March April June October Monday Thursday London Leeds
Rotterdam Geneva Boston Quebec""".split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@lru_cache(maxsize=1)
def font_paths() -> tuple[Path, ...]:
    """Every TrueType font on this machine, sorted, so a seed picks the same one every time."""
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\n"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
        found = {Path(line) for line in out.splitlines() if line.lower().endswith(".ttf")}
    except (OSError, subprocess.SubprocessError):
        found = set()
    if not found:
        found = set(Path("/usr/share/fonts").rglob("*.ttf"))
    return tuple(sorted(found))


def token(rng: random.Random) -> str:
    """One word of running text: mostly plain words, now and then a name, a number, an amount or a date."""
    r = rng.random()
    if r < 0.70:
        return rng.choice(WORDS)
    if r < 0.78:
        return rng.choice(NAMES)
    if r < 0.83:
        return str(rng.randint(2, 999))
    if r < 0.88:
        return f"${rng.randint(1, 99_999):,}.{rng.randint(0, 99):02d}"
    if r < 0.91:
        return f"{rng.randint(1_000, 9_999_999):,}"
    if r < 0.94:
        return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1990, 2030)}"
    if r < 0.96:
        return f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%"
    if r < 0.98:
        return f"({rng.choice(WORDS)})"
    return f"{rng.choice(WORDS)}-{rng.choice(WORDS)}"


def sentences(rng: random.Random, count: int) -> list[str]:
    """``count`` words or so of sentences: capitalised, commas, a closing mark."""
    words = []
    while len(words) < count:
        sentence = [token(rng) for _ in range(rng.randint(5, 18))]
        sentence[0] = sentence[0][:1].upper() + sentence[0][1:]
        if len(sentence) > 7 and rng.random() < 0.5:
            sentence[rng.randint(2, len(sentence) - 3)] += rng.choice((",", ",", ";", ":"))
        sentence[-1] += rng.choice((".", ".", ".", "?", "!"))
        words += sentence
    return words


def wrap(words: list[str], fits) -> list[str]:
    lines, line = [], []
    for word in words:
        if line and not fits(" ".join(line + [word])):
            lines.append(" ".join(line))
            line = [word]
        else:
            line.append(word)
    if line:
        lines.append(" ".join(line))
    return lines


def scan(image: Image.Image, rng: random.Random, skew: float | None = None) -> tuple[bytes, str]:
    """``image`` as a scanner and a file format would leave it, as the file's bytes; and a few
    words saying how."""
    skew = rng.uniform(-1.6, 1.6) if skew is None else skew
    if skew:
        image = image.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255, expand=False)
    blur = rng.choice((0.0, 0.0, 0.4, 0.7))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    grain = rng.choice((0, 0, 6, 12))
    pixels = np.asarray(image, dtype=np.float32)
    if grain:
        pixels = pixels + np.random.default_rng(rng.randrange(2**32)).normal(0, grain, pixels.shape)
    dust = rng.choice((0, 0, 1500))
    if dust:
        np_rng = np.random.default_rng(rng.randrange(2**32))
        ys, xs = np_rng.integers(0, pixels.shape[0] - 2, dust), np_rng.integers(0, pixels.shape[1] - 2, dust)
        pixels[ys, xs] = np_rng.choice((0, 60, 120), dust)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    quality = rng.choice((None, 55, 70, 85, 95))
    buf = io.BytesIO()
    image.save(buf, "PNG" if quality is None else "JPEG", **({} if quality is None else {"quality": quality}))
    label = (f"skew {skew:+.1f}, " + (f"blur {blur}, " if blur else "") + (f"grain {grain}, " if grain else "")
             + ("dust, " if dust else "") + ("PNG" if quality is None else f"JPEG q{quality}"))
    return buf.getvalue(), label


def dense_page(seed: int, size=PAGE_SIZE, margin: int = 100) -> tuple[Image.Image, str, str]:
    """A page of paragraphs; its ground truth (the lines in reading order, one per line); a label."""
    data, truth, label = dense_page_file(seed, size, margin)
    return Image.open(io.BytesIO(data)).convert("RGB"), truth, label


def dense_page_file(seed: int, size=PAGE_SIZE, margin: int = 100) -> tuple[bytes, str, str]:
    """``dense_page`` as the bytes of its file (PNG or JPEG)."""
    rng = random.Random(seed)
    path = rng.choice(font_paths())
    px = rng.randint(25, 39)
    chars = rng.randint(30, 110)
    font = ImageFont.truetype(str(path), px)
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    room = size[0] - 2 * margin
    lines: list[str] = []
    line_h = round(px * rng.uniform(1.25, 1.5))
    rows = (size[1] - 2 * margin) // line_h
    while len(lines) < rows:
        para = wrap(sentences(rng, rng.randint(30, 120)),
                    lambda t: len(t) <= chars and draw.textlength(t, font=font) <= room)
        lines += para + [""]
    lines = lines[:rows]
    while lines and not lines[-1]:
        lines.pop()
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        if text:
            draw.text((margin, margin + i * line_h), text, fill=0, font=font)
    data, how = scan(image, rng)
    longest = max(len(t) for t in lines)
    label = f"seed {seed}: {path.stem} {px} px, lines to {longest} chars, {how}"
    return data, "\n".join(t for t in lines if t), label


def text_block(seed: int, rows: int = 6, size: int = 30, width: int = 1300) -> tuple[Image.Image, list[str]]:
    """A few lines of running text in a sans or serif font on a white page: the image and its lines."""
    rng = random.Random(seed)
    font = ImageFont.truetype(str(rng.choice([p for p in font_paths() if "Sans" in p.name or "Serif" in p.name])), size)
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines = wrap(sentences(rng, 200), lambda t: draw.textlength(t, font=font) <= width - 80)[:rows]
    image = Image.new("L", (width, 60 + rows * int(size * 1.5)), 255)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        draw.text((40, 30 + i * int(size * 1.5)), text, fill=0, font=font)
    return image.convert("RGB"), lines


def two_column_page(seed: int, size=(1700, 1400), margin: int = 80, gutter: int = 70) -> tuple[Image.Image, list[str], list[str]]:
    """A page set in two columns, upright: the image and each column's lines."""
    rng = random.Random(seed)
    font = ImageFont.truetype(str(rng.choice([p for p in font_paths() if "Sans" in p.name or "Serif" in p.name])), 30)
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    col_w = (size[0] - 2 * margin - gutter) // 2
    line_h = 42
    rows = (size[1] - 2 * margin) // line_h
    columns = []
    for _ in range(2):
        lines = wrap(sentences(rng, 400), lambda t: draw.textlength(t, font=font) <= col_w)[:rows]
        columns.append(lines)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    for c, lines in enumerate(columns):
        for i, text in enumerate(lines):
            draw.text((margin + c * (col_w + gutter), margin + i * line_h), text, fill=0, font=font)
    return image.convert("RGB"), columns[0], columns[1]


def receipt(seed: int, items: int = 8) -> tuple[Image.Image, list[tuple[str, str]]]:
    """A narrow till receipt: a shop name, items with right-aligned prices, a total; slightly skewed."""
    rng = random.Random(seed)
    mono = [p for p in font_paths() if "Mono" in p.name and "Oblique" not in p.name] or list(font_paths())
    font = ImageFont.truetype(str(rng.choice(mono)), 28)
    goods = """Sourdough loaf|Oat milk 1 L|Free range eggs|Cheddar 400 g|Bananas loose|Coffee beans|Olive oil|
Tomatoes vine|Greek yoghurt|Basmati rice 2 kg|Dark chocolate|Washing liquid|Apple juice|Butter salted|Pasta fusilli|
Tea bags 80|Orange marmalade|Frozen peas|Kitchen roll|Lemons""".replace("\n", "").split("|")
    rows = [(name, f"{rng.randint(0, 39)}.{rng.randint(0, 99):02d}") for name in rng.sample(goods, items)]
    total = sum(float(p) for _, p in rows)
    rows.append(("TOTAL", f"{total:.2f}"))
    width, line_h = 640, 44
    image = Image.new("L", (width, 140 + line_h * (len(rows) + 1)), 255)
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 40), "GREEN GROCER", fill=0, font=font, anchor="mt")
    for i, (name, price) in enumerate(rows):
        y = 110 + i * line_h
        draw.text((30, y), name, fill=0, font=font)
        draw.text((width - 30, y), price, fill=0, font=font, anchor="ra")
    image = image.rotate(rng.uniform(-1.0, 1.0), resample=Image.Resampling.BICUBIC, fillcolor=255, expand=True)
    return image.convert("RGB"), rows


def long_lines(seed: int, count: int = 5, size: int = 30) -> tuple[Image.Image, list[str]]:
    """Lines of 80 to 110 characters with amounts like $21,655.88, one under the other."""
    rng = random.Random(seed)
    font = ImageFont.truetype(str(rng.choice([p for p in font_paths() if "Math" not in p.name])), size)
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    lines = []
    while len(lines) < count:
        words = sentences(rng, 40)
        amount = f"${rng.randint(1_000, 99_999):,}.{rng.randint(0, 99):02d}"
        words.insert(rng.randint(1, 6), amount)
        limit = rng.randint(80, 110)
        text = wrap(words, lambda t, limit=limit: len(t) <= limit)[0]
        if len(text) >= 80:
            lines.append(text)
    width = int(max(draw.textlength(t, font=font) for t in lines)) + 80
    image = Image.new("L", (width, 60 + len(lines) * int(size * 1.5)), 255)
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        draw.text((40, 30 + i * int(size * 1.5)), text, fill=0, font=font)
    return image.convert("RGB"), lines
