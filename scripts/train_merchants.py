#!/usr/bin/env python3
"""Builds the merchant gazetteer (core/data/merchants.json) from SROIE-style labels.

Usage: scripts/train_merchants.py LABELS_DIR --hold-out IMAGES_DIR [--out core/data/merchants.json]

Every receipt that has an image in IMAGES_DIR is held out of training, so `ocr-worker evaluate` on
those images scores receipts the gazetteer never saw. Names and addresses are upper-cased with
whitespace collapsed, as the labels' scoring compares them.
"""
import argparse
import collections
import json
import os


def normalize(text):
    return " ".join(text.upper().split())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels")
    parser.add_argument("--hold-out", required=True, help="folder of images whose receipts are held out")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "core", "data", "merchants.json"))
    args = parser.parse_args()

    held_out = {os.path.splitext(name)[0] for name in os.listdir(args.hold_out)}
    addresses = collections.defaultdict(collections.Counter)
    trained = 0
    for name in sorted(os.listdir(args.labels)):
        stem, extension = os.path.splitext(name)
        if extension != ".json" or stem in held_out:
            continue
        with open(os.path.join(args.labels, name), encoding="utf-8") as handle:
            label = json.load(handle)
        company = normalize(label.get("company", ""))
        if not company:
            continue
        trained += 1
        address = normalize(label.get("address", ""))
        addresses[company][address] += 0
        if address:
            addresses[company][address] += 1

    merchants = [
        {"name": company, "addresses": [a for a, _ in counts.most_common() if a]}
        for company, counts in sorted(addresses.items())
    ]
    gazetteer = {
        "source": (
            f"Built by scripts/train_merchants.py from {trained} labelled receipts of the ICDAR 2019 SROIE "
            "training split (Huang et al., ICDAR 2019, doi:10.1109/ICDAR.2019.00244; CC BY 4.0), "
            f"holding out the {len(held_out)} receipts with images in receipts-dev/images."
        ),
        # SROIE receipts are Malaysian: the gazetteer applies only to receipts read as Malaysian.
        "countries": ["MY"],
        "merchants": merchants,
    }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(gazetteer, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    print(f"{len(merchants)} merchants from {trained} receipts -> {args.out}")


if __name__ == "__main__":
    main()
