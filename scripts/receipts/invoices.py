#!/usr/bin/env python3
"""Invoice generator: PDF invoices from many countries, with labels known by construction.

Each invoice is a business's bill to another business, in its country's language, money and date
formats, in one of three layouts invoices really use:

- classic: the seller's block at the top left, the title and the invoice's dates at the right,
  the buyer's block (`Bill To`, `Facturé à`, …) below;
- window: the buyer's address where an envelope's window shows it, under a small sender line, the
  seller's name at the top right or only in the footer (German and Dutch letters);
- parties: the seller and the buyer side by side under their labels (`Sprzedawca` / `Nabywca`,
  `Dodavatel` / `Odběratel`), as Polish and Czech invoices must print them.

Every invoice carries a due date after its invoice date, and some a delivery date before it; some
subtract a deposit, so that the amount due is not the invoice's total. Two thirds keep their text
layer; the rest are scans (the page rendered by pdftoppm, skewed and blurred, saved as an image-only
PDF) and go through OCR. Each PDF gets a label:

    {"company" (the seller), "address" (the seller's), "date" (the invoice date, ISO 8601),
     "total" (the amount due, plain decimal), "currency", "country", "language", "style"}

Usage: invoices.py --out DIR [--per-country N] [--seed S] [--countries DE,PL,...]
The same seed gives the same invoices, file for file.
"""

import argparse
import datetime
import io
import json
import random
import subprocess
import tempfile
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageFilter

from generate import TODAY, address_lines, font_path, format_date, format_number, plain
from invoice_words import INVOICE_WORDS
from locales import COUNTRIES, SHOPS

# (regular, bold): proportional faces, as office software sets invoices.
FONT_PAIRS = [
    ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    ("liberation/LiberationSans-Regular.ttf", "liberation/LiberationSans-Bold.ttf"),
    ("liberation/LiberationSerif-Regular.ttf", "liberation/LiberationSerif-Bold.ttf"),
    ("freefont/FreeSans.ttf", "freefont/FreeSansBold.ttf"),
    ("dejavu/DejaVuSerif.ttf", "dejavu/DejaVuSerif-Bold.ttf"),
]
LETTER = {"US", "CA", "PH", "MX"}


def fonts():
    pairs = [(font_path(r), font_path(b)) for r, b in FONT_PAIRS]
    pairs = [p for p in pairs if p[0] and p[1]]
    if not pairs:
        raise SystemExit("no fonts found: install fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf")
    return pairs


def company(place, words, rng, avoid=None):
    """An invented business with the country's legal form: (name, family)."""
    _, families = SHOPS[place["language"]]
    while True:
        family = rng.choice(families)
        if family != avoid:
            break
    trade = rng.choice(words["trades"])
    name = f"{family} {trade}" if rng.random() < 0.5 else f"{trade} {family}"
    return f"{name} {rng.choice(place['legal'])}", family


def money(minor, place, rng):
    """An amount as invoices print their totals: with the symbol, the ISO code, or bare."""
    text = format_number(minor, place["number"])
    style = rng.random()
    if style < 0.4:
        symbol = place["symbol"]
        if place["after"]:
            return f"{text} {symbol}"
        return f"{symbol} {text}" if symbol[-1].isalpha() else f"{symbol}{text}"
    if style < 0.7:
        return f"{place['currency']} {text}" if rng.random() < 0.5 else f"{text} {place['currency']}"
    return text


def build(place, rng):
    """The invoice's parts and its label."""
    words = INVOICE_WORDS[place["language"]]
    seller, family = company(place, words, rng)
    buyer, _ = company(place, words, rng, avoid=family)
    seller_address = address_lines(place, rng)
    buyer_address = address_lines(place, rng)
    issued = TODAY - datetime.timedelta(days=rng.randint(20, 2 * 365))
    due = issued + datetime.timedelta(days=rng.choice([7, 14, 30]))
    style = rng.choice(place["dates"])
    dates = [(rng.choice(words["date"]), format_date(issued, style, place["language"], rng))]
    if rng.random() < 0.3:
        delivered = issued - datetime.timedelta(days=rng.randint(1, 12))
        dates.append((rng.choice(words["delivery"]), format_date(delivered, style, place["language"], rng)))
    dates.append((rng.choice(words["due"]), format_date(due, style, place["language"], rng)))
    if len(dates) > 2 and rng.random() < 0.5:
        dates[1], dates[2] = dates[2], dates[1]

    rows = []
    for _ in range(rng.randint(1, 5)):
        quantity = rng.choice([1, 1, 2, 3, 5, 10])
        unit = rng.randint(5, 900) * 100  # 5.00 to 900.00, or 500 to 90,000 without minor units
        if place["currency"] == "IDR":
            unit *= 100
        rows.append((rng.choice(words["services"]), quantity, unit, quantity * unit))
    net = sum(row[3] for row in rows)
    rate = place["tax_rate"] or 0.2
    tax = round(net * rate)
    if place["number"][2] == 0:
        tax -= tax % 100
    total = net + tax
    deposit = 0
    if rng.random() < 0.25:
        deposit = (total // 4) - (total // 4) % (100 if place["number"][2] == 0 else 1000)
    due_amount = total - deposit
    totals = [(rng.choice(words["net"]), format_number(net, place["number"])),
              (f"{rng.choice(words['tax'])} {rate * 100:g}%", format_number(tax, place["number"]))]
    if deposit:
        totals.append((rng.choice(words["total"]), format_number(total, place["number"])))
        totals.append((words["paid"], "-" + format_number(deposit, place["number"])))
        totals.append((rng.choice(words["due_amount"]), money(due_amount, place, rng)))
    else:
        label = rng.choice(words["due_amount"] + words["total"])
        totals.append((label, money(due_amount, place, rng)))
    vat = f"{place['vat']} {rng.randint(10_000_000, 99_999_999)}" if place["vat"] else f"{words['reg']} {rng.randint(100_000, 999_999)}"
    invoice = dict(
        words=words, seller=seller, buyer=buyer, seller_address=seller_address, buyer_address=buyer_address,
        number=f"{rng.choice(['INV', 'RE', 'F', ''])}{issued.year}-{rng.randint(100, 9999):04d}",
        title=rng.choice(words["title"]), dates=dates, rows=rows, totals=totals, vat=vat,
        phone=f"Tel. {place['phone']}{rng.randint(1000, 9999)}" if place["phone"] else "",
        iban=f"{words['bank']}: {place['code']}{rng.randint(10, 99)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
    )
    label = {
        "company": seller,
        "address": " ".join(seller_address),
        "date": issued.isoformat(),
        "total": plain(due_amount, place["number"]),
        "currency": place["currency"],
        "country": place["code"],
        "language": place["language"],
    }
    return invoice, label


class Sheet:
    """An A4 or Letter page, written in millimetres."""

    def __init__(self, letter, pair, rng):
        self.pdf = FPDF(format="Letter" if letter else "A4", unit="mm")
        self.pdf.set_creation_date(datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc))
        self.pdf.set_auto_page_break(False)
        self.pdf.add_font("body", "", pair[0])
        self.pdf.add_font("body", "B", pair[1])
        self.pdf.add_page()
        self.width = self.pdf.w
        self.size = rng.choice([9, 9.5, 10, 10.5])

    def text(self, x, y, text, size=None, bold=False, align="L", width=80):
        self.pdf.set_font("body", "B" if bold else "", size or self.size)
        self.pdf.set_xy(x, y)
        self.pdf.cell(width, (size or self.size) * 0.45, text, align=align)

    def block(self, x, y, lines, bold_first=False, align="L", width=80):
        for index, line in enumerate(lines):
            self.text(x, y, line, bold=bold_first and index == 0, align=align, width=width)
            y += self.size * 0.5
        return y


def layout_for(place, rng):
    if place["code"] in ("PL", "CZ"):
        return "parties"
    if place["language"] in ("de", "nl") and rng.random() < 0.6:
        return "window"
    return rng.choice(["classic", "classic", "window", "parties"])


def draw(invoice, place, pair, rng):
    sheet = Sheet(place["code"] in LETTER, pair, rng)
    words = invoice["words"]
    layout = layout_for(place, rng)
    right = sheet.width - 20
    seller_lines = [invoice["seller"], *invoice["seller_address"], invoice["vat"]]
    if invoice["phone"]:
        seller_lines.append(invoice["phone"])
    buyer_lines = [invoice["buyer"], *invoice["buyer_address"]]
    meta = [(rng.choice(words["number"]), invoice["number"]), *invoice["dates"]]

    def meta_block(x, y):
        for name, value in meta:
            sheet.text(x, y, f"{name}:", width=40)
            sheet.text(x + 40, y, value, width=35)
            y += sheet.size * 0.5
        return y

    if layout == "classic":
        sheet.text(20, 18, invoice["seller"], size=sheet.size + 6, bold=True, width=110)
        y = sheet.block(20, 27, seller_lines[1:])
        sheet.text(right - 80, 18, invoice["title"], size=sheet.size + 8, bold=True, align="R", width=80)
        meta_block(right - 75, 30)
        y = max(y, 30 + len(meta) * sheet.size * 0.5) + 10
        sheet.text(20, y, rng.choice([b for b in words["buyer"] if b] or [""]), bold=True)
        y = sheet.block(20, y + 6, buyer_lines) + 10
    elif layout == "window":
        logo = rng.random() < 0.7
        if logo:
            sheet.text(right - 110, 15, invoice["seller"], size=sheet.size + 6, bold=True, align="R", width=110)
        sender = f"{invoice['seller']} · {invoice['seller_address'][0]} · {invoice['seller_address'][1]}"
        sheet.text(20, 45, sender, size=7, width=100)
        label = rng.choice(words["buyer"])
        y = 52
        if label:
            sheet.text(20, y, label, bold=True)
            y += 6
        sheet.block(20, y, buyer_lines)
        meta_block(right - 75, 50)
        sheet.text(20, 95, f"{invoice['title']} {invoice['number']}", size=sheet.size + 4, bold=True, width=120)
        y = 105
    else:
        sheet.text(20, 15, f"{invoice['title']} {invoice['number']}", size=sheet.size + 6, bold=True, width=150)
        y = meta_block(20, 26) + 6
        seller_label = rng.choice(words["seller"])
        buyer_label = rng.choice([b for b in words["buyer"] if b])
        sheet.text(20, y, seller_label, bold=True)
        sheet.text(110, y, buyer_label, bold=True)
        sheet.block(20, y + 6, seller_lines, bold_first=True)
        y = sheet.block(110, y + 6, buyer_lines, bold_first=True) + 16

    # The items.
    columns = [(20, 80, "L"), (100, 20, "R"), (120, 30, "R"), (150, right - 150, "R")]
    for (x, w, align), head in zip(columns, words["head"]):
        sheet.text(x, y, head, bold=True, align=align, width=w)
    sheet.pdf.line(20, y + 5.5, right, y + 5.5)
    y += 8
    for description, quantity, unit, amount in invoice["rows"]:
        values = [description, str(quantity), format_number(unit, place["number"]), format_number(amount, place["number"])]
        for (x, w, align), value in zip(columns, values):
            sheet.text(x, y, value, align=align, width=w)
        y += sheet.size * 0.55
    sheet.pdf.line(20, y + 1, right, y + 1)
    y += 5
    for index, (name, value) in enumerate(invoice["totals"]):
        last = index == len(invoice["totals"]) - 1
        sheet.text(100, y, name, bold=last, width=50)
        sheet.text(150, y, value, bold=last, align="R", width=right - 150)
        y += sheet.size * 0.55
    sheet.text(20, y + 10, words["thanks"], width=150)

    # The footer: the seller's legal name and registration, where a letter prints them.
    bottom = sheet.pdf.h - 28
    sheet.pdf.line(20, bottom - 3, right, bottom - 3)
    footer = [f"{invoice['seller']} · {' · '.join(invoice['seller_address'])}", f"{invoice['vat']} · {invoice['iban']}"]
    for index, line in enumerate(footer):
        sheet.pdf.set_font("body", "", 7.5)
        sheet.pdf.set_xy(20, bottom + index * 4)
        sheet.pdf.cell(right - 20, 3.5, line, align="C")
    return bytes(sheet.pdf.output())


def as_scan(pdf, rng):
    """The page as a scanner gives it: rendered, slightly skewed and blurred, in an image-only PDF."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "page.pdf"
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", "-singlefile", str(source), str(Path(work) / "page")], check=True)
        page = Image.open(Path(work) / "page.png")
        page.load()
    page = page.rotate(rng.uniform(-1.2, 1.2), Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    buffer = io.BytesIO()
    page.convert("L").save(buffer, "PDF", resolution=150.0)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--per-country", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--countries", help="comma-separated ISO codes (default: all)")
    args = parser.parse_args()
    pairs = fonts()
    wanted = set(args.countries.upper().split(",")) if args.countries else None
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "labels").mkdir(parents=True, exist_ok=True)
    written = 0
    for place in COUNTRIES:
        if wanted and place["code"] not in wanted:
            continue
        for index in range(args.per_country):
            rng = random.Random(f"{args.seed}-invoice-{place['code']}-{index}")
            invoice, label = build(place, rng)
            pdf = draw(invoice, place, rng.choice(pairs), rng)
            scan = index % 3 == 2
            if scan:
                pdf = as_scan(pdf, rng)
            label["style"] = "scan" if scan else "text"
            name = f"{place['code'].lower()}-invoice-{index:02d}"
            (args.out / "images" / f"{name}.pdf").write_bytes(pdf)
            (args.out / "labels" / f"{name}.json").write_text(json.dumps(label, ensure_ascii=False, indent=1) + "\n")
            written += 1
    countries = len(wanted) if wanted else len(COUNTRIES)
    print(f"wrote {written} invoices from {countries} countries -> {args.out}")


if __name__ == "__main__":
    main()
