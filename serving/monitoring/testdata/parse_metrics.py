"""Scrapes a Prometheus metrics endpoint and parses it with prometheus_client.

The parser is the official Python client's (prometheus_client.parser
.text_string_to_metric_families), as a scraper written in Python reads the
text format; any line it cannot read fails the script. Prints one JSON
object: every family's type by name, and the samples of the families whose
names start with PREFIX as [name, labels, value].

usage: parse_metrics.py URL PREFIX
"""

import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url, prefix = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(url, timeout=60) as resp:
        content_type = resp.headers.get("Content-Type", "")
        text = resp.read().decode("utf-8")
    types, samples = {}, []
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            if s.name.startswith(prefix):
                samples.append([s.name, s.labels, s.value])
    json.dump({"content_type": content_type, "types": types, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
