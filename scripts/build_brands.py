#!/usr/bin/env python3
"""Builds extract/data/brands.tsv, the worldwide brand directory, from OpenStreetMap's
name-suggestion-index (npm package `name-suggestion-index`, BSD-3-Clause).

Usage: scripts/build_brands.py [PATH_TO_UNPACKED_PACKAGE]
Without a path, the pinned version is fetched with `npm pack` into a temporary folder.

Every shop and amenity brand becomes one line:

    NAME <TAB> OTHER NAMES (|) <TAB> COUNTRIES (,) <TAB> OSM CATEGORY

NAME is the name on the shop sign (`tags.name`); OTHER NAMES are the brand and the index's match
names; COUNTRIES are ISO 3166-1 codes, `*` for brands that operate worldwide, world regions (UN M49
codes such as `150` for Europe) resolved to the countries the extractor knows, and `?` for brands
the index places only in custom areas (a city, a chain's home region); CATEGORY is
the OSM key and value (`shop=supermarket`, `amenity=fuel`). Names the index calls generic are
left out. The package's licence is copied beside the file.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VERSION = "8.0.20260918"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "extract", "data", "brands.tsv")
LICENCE = os.path.join(ROOT, "extract", "data", "brands-LICENSE.md")

# The countries extraction knows (extract/src/locale.rs), and the UN M49 regions that hold them.
KNOWN = "US CA GB IE DE AT CH FR BE NL ES IT PT SE NO DK PL TR MY SG ID IN AE AU NZ MX BR AR CL CO KH TH JP KR CN HK PH VN ZA".split()
REGIONS = {
    "002": "ZA", "202": "ZA", "018": "ZA",
    "019": "US CA MX BR AR CL CO", "419": "MX BR AR CL CO", "021": "US CA", "003": "US CA MX",
    "005": "BR AR CL CO", "013": "MX",
    "142": "MY SG ID IN AE KH TH JP KR CN HK PH VN TR", "030": "JP KR CN HK",
    "035": "MY SG ID KH TH PH VN", "034": "IN", "145": "AE TR",
    "150": "GB IE DE AT CH FR BE NL ES IT PT SE NO DK PL", "151": "PL", "154": "GB IE SE NO DK",
    "155": "DE AT CH FR BE NL", "039": "ES IT PT",
    "009": "AU NZ", "053": "AU NZ",
    "eu": "DE AT FR BE NL ES IT PT IE SE DK PL",
    "fx": "FR",
}


def package_dir(argv):
    if len(argv) > 1:
        return argv[1], None
    work = tempfile.mkdtemp(prefix="nsi-")
    subprocess.run(["npm", "pack", "--silent", f"name-suggestion-index@{VERSION}"], cwd=work, check=True,
                   stdout=subprocess.DEVNULL)
    archive = [name for name in os.listdir(work) if name.endswith(".tgz")][0]
    subprocess.run(["tar", "xzf", archive], cwd=work, check=True)
    return os.path.join(work, "package"), work


def places(codes):
    """ISO codes and regions of a locationSet list, resolved to the known countries."""
    found = set()
    for code in codes:
        if not isinstance(code, str):
            continue  # a [longitude, latitude] point: too local to say
        code = code.lower()
        if code == "001":
            found.add("*")
        elif code in REGIONS:
            found.update(REGIONS[code].split())
        elif code.endswith(".geojson"):
            continue  # a custom area (a city, a state): left out
        else:
            country = code.split("-")[0].upper()
            if len(country) == 2:
                found.add(country)
    return found


def clean(text):
    return re.sub(r"\s+", " ", text.replace("\t", " ").replace("|", " ")).strip()


def main(argv):
    folder, work = package_dir(argv)
    try:
        with open(os.path.join(folder, "dist", "json", "nsi.json"), encoding="utf-8") as handle:
            index = json.load(handle)["nsi"]
        with open(os.path.join(folder, "dist", "json", "genericWords.json"), encoding="utf-8") as handle:
            generic = [re.compile(pattern, re.I) for pattern in json.load(handle)["genericWords"]]
        with open(os.path.join(folder, "package.json"), encoding="utf-8") as handle:
            version = json.load(handle)["version"]
        lines = []
        for key, entry in sorted(index.items()):
            kind = key.split("/")
            if kind[0] != "brands" or kind[1] not in ("shop", "amenity"):
                continue
            category = f"{kind[1]}={kind[2]}"
            for item in entry["items"]:
                tags = item.get("tags", {})
                name = clean(tags.get("name") or tags.get("brand") or "")
                if not name or any(pattern.search(name) for pattern in generic):
                    continue
                location = item.get("locationSet", {})
                countries = places(location.get("include", [])) - places(location.get("exclude", []))
                if not countries:
                    countries = {"?"}  # only custom areas (a city, a chain's home region)
                if "*" in countries:
                    countries = {"*"}
                others = {clean(n) for n in [tags.get("brand", "")] + item.get("matchNames", [])}
                others = sorted(o for o in others if o and o.lower() != name.lower())
                lines.append(f"{name}\t{'|'.join(others)}\t{','.join(sorted(countries))}\t{category}")
        lines.sort(key=str.lower)
        header = (f"# OpenStreetMap name-suggestion-index {version} (BSD-3-Clause, see brands-LICENSE.md): "
                  "shop and amenity brands; built by scripts/build_brands.py\n")
        with open(OUT, "w", encoding="utf-8") as handle:
            handle.write(header)
            handle.write("\n".join(lines) + "\n")
        shutil.copyfile(os.path.join(folder, "LICENSE.md"), LICENCE)
        print(f"{len(lines)} brands written to {OUT}")
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
