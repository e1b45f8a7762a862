#!/usr/bin/env python3
"""Validate every object in the given multi-document YAML files (or stdin, "-").

Built-in kinds are checked with kubernetes-validate (strict: unknown fields fail) against
the oldest supported Kubernetes (1.31) and the newest schema it ships; Tollgate's own kinds
against the committed CRD schemas (jsonschema). ServiceMonitor has no schema available
offline and is reported as not validated. Exits non-zero if any object is invalid.
"""
import pathlib
import sys

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import latest_version
from ruamel.yaml import YAML

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSIONS = ["1.31.0", latest_version()]
UNVALIDATED = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def crd_schemas() -> dict:
    schemas = {}
    for crd_file in sorted((ROOT / "crds").glob("*.yaml")):
        for crd in YAML(typ="safe").load_all(crd_file.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[f"{group}/{version['name']}", kind] = version["schema"]["openAPIV3Schema"]
    return schemas


def main(files: list[str]) -> int:
    schemas = crd_schemas()
    failures = checked = 0
    for name in files:
        text = sys.stdin.read() if name == "-" else pathlib.Path(name).read_text()
        for doc in YAML(typ="safe").load_all(text):
            if not doc:
                continue
            key = (doc.get("apiVersion"), doc.get("kind"))
            what = f"{name}: {key[1]} {doc.get('metadata', {}).get('name')}"
            try:
                if key in schemas:
                    jsonschema.validate(doc, schemas[key])
                elif key in UNVALIDATED:
                    print(f"not validated (no schema offline): {what}")
                    continue
                else:
                    for version in VERSIONS:
                        kubernetes_validate.validate(doc, version, strict=True)
                checked += 1
            except Exception as e:  # noqa: BLE001 - every validator's error is a failure
                failures += 1
                print(f"INVALID {what}: {str(e).splitlines()[0]}")
    print(f"validated {checked} object(s) against Kubernetes {', '.join(VERSIONS)} / CRD schemas; {failures} invalid")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["-"]))
