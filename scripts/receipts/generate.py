#!/usr/bin/env python3
"""Receipt generator: a multi-country corpus with labels known by construction.

For every country in locales.COUNTRIES it writes receipts in that country's language, money and
date formats and address shape, set in real fonts (DejaVu, Liberation, FreeFont, Noto), then makes
half of them look like phone photos (rotation, perspective, blur, uneven light, noise, JPEG
artefacts) and the rest like scans (a slight skew, light blur). Each image gets a label:

    {"company", "address", "date" (ISO 8601), "total" (plain decimal), "currency", "country",
     "language", "style"}

Usage: generate.py --out DIR [--per-country N] [--seed S]
The same seed gives the same corpus, image for image.
"""

import argparse
import datetime
import io
import json
import math
import random
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from locales import COUNTRIES, MONTHS, SHOPS, WORDS

FONT_DIRS = [Path("/usr/share/fonts/truetype")]
# (regular, bold) pairs; a receipt uses one pair throughout.
FONT_PAIRS = [
    ("dejavu/DejaVuSansMono.ttf", "dejavu/DejaVuSansMono-Bold.ttf"),
    ("liberation/LiberationMono-Regular.ttf", "liberation/LiberationMono-Bold.ttf"),
    ("freefont/FreeMono.ttf", "freefont/FreeMonoBold.ttf"),
    ("noto/NotoSansMono-Regular.ttf", "noto/NotoSansMono-Bold.ttf"),
    ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    ("liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf"),
    ("freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf"),
]
WIDTH = 576  # an 80 mm thermal roll at about 180 dpi
MARGIN = 28
TODAY = datetime.date(2026, 11, 30)


def font_path(relative):
    for base in FONT_DIRS:
        path = base / relative
        if path.exists():
            return str(path)
    return None


def available_fonts():
    pairs = [(font_path(r), font_path(b)) for r, b in FONT_PAIRS]
    pairs = [p for p in pairs if p[0] and p[1]]
    if not pairs:
        raise SystemExit("no fonts found: install fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf, fonts-noto-mono")
    return pairs


# ---------------------------------------------------------------------------------------------
# Formats


def group(digits, separator):
    if separator == "lakh":
        if len(digits) <= 3:
            return digits
        head, tail = digits[:-3], digits[-3:]
        parts = []
        while len(head) > 2:
            parts.insert(0, head[-2:])
            head = head[:-2]
        if head:
            parts.insert(0, head)
        return ",".join(parts + [tail])
    parts = []
    while len(digits) > 3:
        parts.insert(0, digits[-3:])
        digits = digits[:-3]
    parts.insert(0, digits)
    return separator.join(parts)


def format_number(minor, number):
    """`minor` units (cents, or whole units for currencies without cents) in a number style."""
    separator, decimal, cents = number
    if cents == 0:
        return group(str(minor), separator)
    whole, fraction = divmod(minor, 100)
    return f"{group(str(whole), separator)}{decimal}{fraction:02d}"


def plain(minor, number):
    return str(minor) if number[2] == 0 else f"{minor // 100}.{minor % 100:02d}"


def money(minor, place, rng, with_symbol):
    text = format_number(minor, place["number"])
    if not with_symbol:
        return text
    symbol = place["symbol"]
    if place["after"]:
        return f"{text} {symbol}"
    gap = " " if symbol[-1].isalpha() and rng.random() < 0.6 else ""
    return f"{symbol}{gap}{text}"


def format_date(day, style, language, rng):
    d, m, y = f"{day.day:02d}", f"{day.month:02d}", f"{day.year}"
    if style == "dd/mm/yyyy":
        return f"{d}/{m}/{y}"
    if style == "mm/dd/yyyy":
        return f"{m}/{d}/{y}"
    if style == "dd.mm.yyyy":
        return f"{d}.{m}.{y}" if rng.random() < 0.8 else f"{d}.{m}.{y[2:]}"
    if style == "dd-mm-yyyy":
        return f"{d}-{m}-{y}"
    if style == "yyyy-mm-dd":
        return f"{y}-{m}-{d}"
    if style == "yyyy/mm/dd":
        return f"{y}/{m}/{d}"
    month = MONTHS[language].split()[day.month - 1]
    return f"{day.day} {month} {y}"


def ascii_slug(text):
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def address_lines(place, rng):
    street = rng.choice(place["streets"])
    city, postcode = rng.choice(place["cities"])
    number = str(rng.randint(1, 240))
    shape = place["address"]
    if shape in ("us", "gb", "au", "sg"):
        first = f"{number} {street}"
    elif shape == "fr":
        first = f"{number}, {street}" if rng.random() < 0.3 else f"{number} {street}"
    elif shape == "br":
        first = f"{street}, {number}"
    elif shape == "in":
        first = f"{number}, {street}"
    elif shape == "my":
        first = f"No. {number}, {street}"
    elif shape == "id":
        first = f"{street} No. {number}"
    elif shape == "jp":
        first = street
    else:
        first = f"{street} {number}"
    if shape in ("us", "gb", "au", "sg", "id", "jp"):
        second = f"{city} {postcode}"
    elif shape == "in":
        second = f"{city} - {postcode}"
    else:
        second = f"{postcode} {city}"
    return [first, second]


# ---------------------------------------------------------------------------------------------
# The receipt as lines


def merchant(place, rng):
    """(header lines, label name, footer lines, domain)."""
    language = place["language"]
    if rng.random() < 0.5:
        brand = rng.choice(place["brands"])
        header = brand.upper() if rng.random() < 0.6 else brand
        if len(brand) <= 8 and " " not in brand and rng.random() < 0.35:
            header = " ".join(brand.upper())  # a logo printed letter by letter
        footer = []
        if rng.random() < 0.5:
            footer.append(f"{brand} {rng.choice(place['legal'])}")
        return [header], brand, footer, ascii_slug(brand)
    trades, families = SHOPS[language]
    trade, family = rng.choice(trades), rng.choice(families)
    name = f"{trade} {family}" if rng.random() < 0.6 else f"{family} {trade}"
    if rng.random() < 0.6:
        name = f"{name} {rng.choice(place['legal'])}"
    if rng.random() < 0.4:
        name = name.upper()
    return [name], name, [], ascii_slug(f"{trade}{family}")


def amounts(place, rng):
    """Item prices in minor units."""
    count = rng.randint(2, 7)
    if place["number"][2] == 0:
        unit = 500 if place["currency"] == "IDR" else 10
        scale = 30 if place["currency"] == "IDR" else 60
        return [rng.randint(1, scale) * unit * (10 if place["currency"] == "IDR" else 1) for _ in range(count)]
    top = 2500 if place["currency"] not in ("SEK", "NOK", "DKK", "CZK", "INR", "PHP", "MXN", "TRY", "ZAR") else 25000
    return [rng.randint(49, top) for _ in range(count)]


def build(place, rng):
    """The receipt's lines: (kind, text[, right]) and its label."""
    words = WORDS[place["language"]]
    header, company, footer, domain = merchant(place, rng)
    address = address_lines(place, rng)
    day = TODAY - datetime.timedelta(days=rng.randint(1, 6 * 365))
    date_text = format_date(day, rng.choice(place["dates"]), place["language"], rng)
    time_text = f"{rng.randint(7, 21):02d}:{rng.randint(0, 59):02d}"
    prices = amounts(place, rng)
    rate = place["tax_rate"]

    lines = []
    for text in header:
        lines.append(("title", text))
    for text in address:
        lines.append(("center", text))
    if place["phone"] and rng.random() < 0.8:
        lines.append(("center", f"Tel. {place['phone']}{rng.randint(1000, 9999)}"))
    if place["vat"] and rng.random() < 0.6:
        lines.append(("center", f"{place['vat']}{rng.randint(10_000_000, 99_999_999)}"))
    lines.append(("rule", ""))
    date_line = ("left", f"{words['date']}: {date_text} {time_text}" if rng.random() < 0.5 else f"{date_text}  {time_text}")
    date_on_top = rng.random() < 0.7
    if date_on_top:
        lines.append(date_line)
        lines.append(("left", f"#{rng.randint(1000, 99999)}  POS {rng.randint(1, 9)}"))
        lines.append(("rule", ""))
    charged = []
    for price in prices:
        item = rng.choice(words["items"])
        if rng.random() < 0.2 and price >= 2:
            unit = price // 2
            lines.append(("left", f"  2 x {format_number(unit, place['number'])}"))
            price = unit * 2
        charged.append(price)
        lines.append(("pair", item, format_number(price, place["number"])))
    subtotal = sum(charged)
    if place["tax_added"]:
        tax = round(subtotal * rate)
    else:
        tax = round(subtotal - subtotal / (1 + rate)) if rate else 0
    if place["number"][2] == 0:
        tax -= tax % (100 if place["currency"] == "IDR" else 1)
    total = subtotal + tax if place["tax_added"] else subtotal
    lines.append(("rule", ""))
    if place["tax_added"] or rng.random() < 0.4:
        lines.append(("pair", words["subtotal"], format_number(subtotal, place["number"])))
    if tax:
        label = f"{words['tax']} {rate * 100:g}%" if not place["tax_added"] or rng.random() < 0.5 else words["tax"]
        lines.append(("pair", label, format_number(tax, place["number"])))
    total_word = rng.choice(words["total"])
    lines.append(("total", total_word, money(total, place, rng, rng.random() < 0.6)))
    if rng.random() < 0.5:
        unit = 1000 if place["number"][2] == 0 and place["currency"] == "IDR" else 100 if place["number"][2] == 0 else 1000
        cash = ((total // unit) + 1) * unit
        lines.append(("pair", words["cash"], format_number(cash, place["number"])))
        lines.append(("pair", words["change"], format_number(cash - total, place["number"])))
    else:
        lines.append(("pair", words["card"], format_number(total, place["number"])))
        if rng.random() < 0.4:
            lines.append(("left", f"VISA ****{rng.randint(1000, 9999)}  EXP {rng.randint(1, 12):02d}/{rng.randint(27, 31)}"))
    if place["member_dates"] and rng.random() < 0.3:
        since = datetime.date(rng.randint(2005, 2019), rng.randint(1, 12), rng.randint(1, 28))
        lines.append(("left", f"{words['member']} {format_date(since, rng.choice(place['dates']), place['language'], rng)}"))
    lines.append(("rule", ""))
    if not date_on_top:
        lines.append(date_line)
    lines.append(("center", words["thanks"]))
    for text in footer:
        lines.append(("center", text))
    if rng.random() < 0.5:
        lines.append(("center", f"www.{domain}.{place['web']}"))
    label = {
        "company": company,
        "address": " ".join(address),
        "date": day.isoformat(),
        "total": plain(total, place["number"]),
        "currency": place["currency"],
        "country": place["code"],
        "language": place["language"],
    }
    return lines, label


# ---------------------------------------------------------------------------------------------
# Rendering


def fit(draw, text, font, width):
    """Shrinks nothing; cuts the text to the width (a receipt printer wraps or truncates)."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def render(lines, fonts, rng):
    regular_path, bold_path = fonts
    size = rng.randint(21, 26)
    regular = ImageFont.truetype(regular_path, size)
    bold = ImageFont.truetype(bold_path, size)
    title = ImageFont.truetype(bold_path, int(size * rng.uniform(1.3, 1.7)))
    big = ImageFont.truetype(bold_path, int(size * rng.uniform(1.0, 1.3)))
    spacing = int(size * rng.uniform(1.25, 1.5))
    height = MARGIN * 2 + sum(spacing * (2 if kind == "title" else 1) for kind, *_ in lines) + 20
    image = Image.new("L", (WIDTH, height), 255)
    draw = ImageDraw.Draw(image)
    ink = rng.randint(0, 60)
    y = MARGIN
    inner = WIDTH - 2 * MARGIN
    centered = rng.random() < 0.75
    for kind, *parts in lines:
        if kind == "rule":
            draw.text((MARGIN, y), fit(draw, "-" * 60, regular, inner), font=regular, fill=ink)
            y += spacing
            continue
        if kind in ("pair", "total"):
            font = big if kind == "total" else regular
            left, right = parts
            right_width = draw.textlength(right, font=font)
            draw.text((MARGIN, y), fit(draw, left, font, inner - right_width - 12), font=font, fill=ink)
            draw.text((WIDTH - MARGIN - right_width, y), right, font=font, fill=ink)
            y += int(spacing * (1.2 if kind == "total" else 1))
            continue
        text = parts[0]
        font = title if kind == "title" else regular
        text = fit(draw, text, font, inner)
        width = draw.textlength(text, font=font)
        x = MARGIN + (inner - width) / 2 if kind in ("title", "center") and centered else MARGIN
        draw.text((x, y), text, font=font, fill=ink)
        y += spacing * (2 if kind == "title" else 1)
    return image.crop((0, 0, WIDTH, min(height, y + MARGIN)))


def perspective_coefficients(source, target):
    """Coefficients for Image.transform mapping target corners back to source corners."""
    matrix, vector = [], []
    for (x, y), (u, v) in zip(target, source):
        matrix.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        matrix.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        vector.extend([u, v])
    return np.linalg.solve(np.array(matrix, dtype=float), np.array(vector, dtype=float)).tolist()


def as_photo(image, rng):
    """A phone photo of the receipt: on a table, skewed, blurred, lit unevenly, noisy."""
    w, h = image.size
    pad = int(max(w, h) * 0.08)
    table = rng.randint(70, 150)
    canvas = Image.new("L", (w + 2 * pad, h + 2 * pad), table)
    canvas.paste(image, (pad, pad))
    cw, ch = canvas.size
    jitter = lambda: rng.uniform(-0.035, 0.035)  # noqa: E731
    corners = [(0, 0), (cw, 0), (cw, ch), (0, ch)]
    moved = [(x + jitter() * cw, y + jitter() * ch) for x, y in corners]
    canvas = canvas.transform((cw, ch), Image.Transform.PERSPECTIVE, perspective_coefficients(corners, moved),
                              Image.Resampling.BICUBIC, fillcolor=table)
    canvas = canvas.rotate(rng.uniform(-5, 5), Image.Resampling.BICUBIC, expand=True, fillcolor=table)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.3)))
    pixels = np.asarray(canvas, dtype=np.float32)
    yy, xx = np.mgrid[0:pixels.shape[0], 0:pixels.shape[1]]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / pixels.shape[1] + np.sin(angle) * yy / pixels.shape[0])
    ramp = (ramp - ramp.min()) / max(1e-6, ramp.max() - ramp.min())
    light = 1.0 - rng.uniform(0.15, 0.4) * ramp
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(3, 9), pixels.shape)
    pixels = np.clip(pixels * light + noise, 0, 255).astype(np.uint8)
    photo = Image.fromarray(pixels, "L").convert("RGB")
    scale = rng.uniform(0.8, 1.15)
    photo = photo.resize((int(photo.width * scale), int(photo.height * scale)), Image.Resampling.BILINEAR)
    return photo, rng.randint(45, 75)


def as_scan(image, rng):
    scan = image.rotate(rng.uniform(-1.5, 1.5), Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    scan = scan.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6)))
    return scan.convert("RGB"), rng.randint(75, 92)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--per-country", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--countries", help="comma-separated ISO codes (default: all)")
    args = parser.parse_args()
    fonts = available_fonts()
    wanted = set(args.countries.upper().split(",")) if args.countries else None
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "labels").mkdir(parents=True, exist_ok=True)
    written = 0
    for place in COUNTRIES:
        if wanted and place["code"] not in wanted:
            continue
        for index in range(args.per_country):
            rng = random.Random(f"{args.seed}-{place['code']}-{index}")
            lines, label = build(place, rng)
            image = render(lines, rng.choice(fonts), rng)
            photo = index % 2 == 1
            image, quality = as_photo(image, rng) if photo else as_scan(image, rng)
            label["style"] = "photo" if photo else "scan"
            name = f"{place['code'].lower()}-{index:02d}"
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality)
            (args.out / "images" / f"{name}.jpg").write_bytes(buffer.getvalue())
            (args.out / "labels" / f"{name}.json").write_text(json.dumps(label, ensure_ascii=False, indent=1) + "\n")
            written += 1
    countries = len(wanted) if wanted else len(COUNTRIES)
    languages = len({p["language"] for p in COUNTRIES if not wanted or p["code"] in wanted})
    print(f"wrote {written} receipts: {countries} countries, {languages} languages -> {args.out}")


if __name__ == "__main__":
    main()
