#!/usr/bin/env python3
"""Validate every Tollgate object in the given YAML files against the committed CRD schemas.

The CRD's openAPIV3Schema is extracted to JSON and each document is checked with
check-jsonschema, as an independent second opinion next to the Rust tests (which also run
the CEL rules). Exits non-zero on the first invalid document or unknown Tollgate kind.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

from ruamel.yaml import YAML

ROOT = pathlib.Path(__file__).resolve().parent.parent
GROUP = "llm.tollgate.dev"


def load_schemas(tmp: pathlib.Path) -> dict:
    yaml = YAML(typ="safe")
    schemas = {}
    for crd_file in sorted((ROOT / "crds").glob("*.yaml")):
        for crd in yaml.load_all(crd_file.read_text()):
            if not crd:
                continue
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                path = tmp / f"{kind}-{version['name']}.schema.json"
                path.write_text(json.dumps(version["schema"]["openAPIV3Schema"]))
                schemas[f"{GROUP}/{version['name']}", kind] = path
    return schemas


def main(files: list[str]) -> int:
    yaml = YAML(typ="safe")
    checked = 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = pathlib.Path(tmp_dir)
        schemas = load_schemas(tmp)
        for name in files:
            for i, doc in enumerate(yaml.load_all(pathlib.Path(name).read_text()), start=1):
                if not doc or not str(doc.get("apiVersion", "")).startswith(GROUP + "/"):
                    continue
                key = (doc["apiVersion"], doc.get("kind"))
                if key not in schemas:
                    print(f"{name}: document {i}: no CRD schema for {key}", file=sys.stderr)
                    return 1
                instance = tmp / f"doc-{checked}.json"
                instance.write_text(json.dumps(doc))
                result = subprocess.run(
                    ["check-jsonschema", "--schemafile", str(schemas[key]), str(instance)],
                    capture_output=True,
                    text=True,
                )
                if result.returncode != 0:
                    print(f"{name}: document {i} ({doc['kind']} {doc['metadata']['name']}) is invalid:", file=sys.stderr)
                    print(result.stdout + result.stderr, file=sys.stderr)
                    return 1
                checked += 1
    if checked == 0:
        print("no Tollgate objects found", file=sys.stderr)
        return 1
    print(f"schema check: {checked} Tollgate objects valid against crds/*.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
