"""An independent check of SDTM datasets against the basics shipped as data (tests/data/sdtmig-3.4-basics.json):
required variables present and populated, expected variables present, controlled terms, lengths, ISO 8601
dates and study days without a day 0. It knows nothing of the code that writes the exports."""

import csv
import io
import json
import re
from pathlib import Path

BASICS = json.loads((Path(__file__).parent / "data" / "sdtmig-3.4-basics.json").read_text())
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def findings(domain: str, text: str) -> list[str]:
    """Every departure from the basics, one line each: `DOMAIN.VARIABLE row N: what is wrong`."""
    spec, general = BASICS["domains"][domain], BASICS["general"]
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    found = [f"{domain}.{v}: required variable missing" for v in spec["required"] if v not in columns]
    found += [f"{domain}.{v}: expected variable missing" for v in spec["expected"] if v not in columns]
    for n, row in enumerate(reader, start=1):
        for variable in spec["required"]:
            if variable in row and not row[variable]:
                found.append(f"{domain}.{variable} row {n}: required, empty")
        for variable, terms in spec["codelists"].items():
            if row.get(variable) and row[variable] not in terms:
                found.append(f"{domain}.{variable} row {n}: {row[variable]!r} is not a controlled term")
        for variable, value in row.items():
            if value and variable.endswith(general["date_suffix"]) and not ISO_DATE.match(value):
                found.append(f"{domain}.{variable} row {n}: {value!r} is not an ISO 8601 date")
            if value and variable.endswith(general["day_suffix"]) and variable != "DOMAIN" and int(value) == 0:
                found.append(f"{domain}.{variable} row {n}: there is no study day 0")
            limit = general["max_length"].get(variable)
            if limit and len(value) > limit:
                found.append(f"{domain}.{variable} row {n}: longer than {limit}")
    return found
