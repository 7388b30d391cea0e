#!/usr/bin/python3
"""Parses Prometheus text exposition from stdin with prometheus_client's own parser
(Debian's python3-prometheus-client) and prints it as JSON:
{"families": [{"name", "type", "samples": [{"name", "labels", "value"}]}]}.
A text that does not parse exits 1 with the parser's error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    families = [
        {
            "name": f.name,
            "type": f.type,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples],
        }
        for f in text_string_to_metric_families(sys.stdin.read())
    ]
except Exception as e:  # noqa: BLE001 - any parse failure is the answer
    print(f"does not parse as Prometheus text: {e}", file=sys.stderr)
    sys.exit(1)
json.dump({"families": families}, sys.stdout)
