"""Derives the strict JSON schemas of tests/ops/crd_schemas from upstream CustomResourceDefinitions.

    uv run python tests/ops/crd_schemas/derive_schemas.py [--version V ...] CRD.yaml [CRD.yaml ...]

For each CRD file and each of its served versions (or only those given with --version) this
writes `<kind>-<group>-<version>.json`:
the version's openAPIV3Schema without descriptions and status, made strict the way the API
server's strict field validation is (an object that lists its properties rejects others,
unless it says x-kubernetes-preserve-unknown-fields), with apiVersion and kind pinned and a
checked metadata. Where the CRDs came from is recorded in SOURCES.md beside this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT_DIR = Path(__file__).parent
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": DNS_SUBDOMAIN},
        "namespace": {"type": "string", "maxLength": 63},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}


def strict(schema: Any) -> Any:
    """The schema without descriptions, closed where the API server would prune or reject."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "description":
            continue
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        else:
            out[key] = strict(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    # Only structural object schemas: oneOf/anyOf branches list a subset of the properties.
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def derive(crd: dict[str, Any], only: set[str] | None = None) -> dict[str, dict[str, Any]]:
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schemas = {}
    for version in crd["spec"]["versions"]:
        if not version.get("served") or (only and version["name"] not in only):
            continue
        schema = dict(version["schema"]["openAPIV3Schema"])
        properties = dict(schema.get("properties", {}))
        properties.pop("status", None)
        properties["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        properties["kind"] = {"type": "string", "enum": [kind]}
        properties["metadata"] = METADATA
        schema["properties"] = properties
        schema["required"] = sorted({"apiVersion", "kind", "metadata", "spec"}
                                    | set(schema.get("required", [])))
        derived = strict(schema)
        derived["$comment"] = f"{kind} {group}/{version['name']}: derived by derive_schemas.py"
        schemas[f"{kind.lower()}-{group}-{version['name']}.json"] = derived
    return schemas


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="append", default=[], help="only this served version")
    parser.add_argument("crds", nargs="+", help="CustomResourceDefinition YAML files")
    args = parser.parse_args(argv)
    for path in args.crds:
        for document in yaml.safe_load_all(Path(path).read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                for name, schema in derive(document, set(args.version)).items():
                    (OUT_DIR / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
