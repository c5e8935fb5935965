"""Generate the JSON schema that tests/deploy checks deploy/kserve/*.yaml against.

KServe publishes its CRDs' OpenAPI schemas in its source repository, not in a package; its
Python SDK on PyPI (``kserve``) carries one generated model class per API type instead, each
with ``openapi_types`` (field -> type) and ``attribute_map`` (field -> JSON name), and a setter
that refuses ``None`` for required fields. This script reads those classes from an unpacked
``kserve`` wheel (by parsing, without importing it) and writes a draft 2020-12 schema for
``InferenceService`` (serving.kserve.io/v1beta1) and ``ServingRuntime`` (v1alpha1), strict
(no unknown fields), whose Kubernetes types (``V1Container``, ``V1Probe``, ...) refer to
kubernetes-validate's definitions. ``status`` is left out (the API server writes it).

Regenerate, after ``pip download --no-deps kserve==VERSION`` and unzipping the wheel::

    .venv/bin/python -m tests.deploy.kserve_schema UNPACKED_WHEEL_DIR
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent / "schemas"
K8S_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"
ROOTS = {
    "InferenceService": ("V1beta1InferenceService", "serving.kserve.io/v1beta1"),
    "ServingRuntime": ("V1alpha1ServingRuntime", "serving.kserve.io/v1alpha1"),
}
SCALARS = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "float": {"type": "number"},
    "object": {},
    "datetime": {"type": "string"},
}
# Kubernetes client names -> kubernetes-validate definition names.
K8S_GROUPS = ("io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1.")
K8S_SPECIAL = {
    "ResourceQuantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "K8sIoApiAppsV1DeploymentStrategy": "io.k8s.api.apps.v1.DeploymentStrategy",
    "K8sIoApiAutoscalingV2HorizontalPodAutoscalerBehavior": (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerBehavior"
    ),
}
UNCHECKED: set[str] = set()
REQUIRED = re.compile(r"Invalid value for `(\w+)`, must not be `None`")


def read_models(models_dir: Path) -> dict[str, dict]:
    """``class name -> {"types": {attr: type}, "names": {attr: json name}, "required": [attr]}``."""
    models = {}
    for path in sorted(models_dir.glob("*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.ClassDef):
                continue
            fields = {}
            for stmt in node.body:
                target = stmt.targets[0] if isinstance(stmt, ast.Assign) else None
                if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
                    fields[target.id] = ast.literal_eval(stmt.value)
            if "openapi_types" in fields:
                models[node.name] = {
                    "types": fields["openapi_types"],
                    "names": fields["attribute_map"],
                    "required": sorted(set(REQUIRED.findall(ast.get_source_segment(source, node) or ""))),
                }
    return models


def k8s_ref(name: str, k8s_definitions: set[str]) -> dict:
    if name in K8S_SPECIAL:
        return {"$ref": f"{K8S_DEFINITIONS}#/$defs/{K8S_SPECIAL[name]}"}
    short = re.sub(r"^V1", "", name)
    for group in K8S_GROUPS:
        if group + short in k8s_definitions:
            return {"$ref": f"{K8S_DEFINITIONS}#/$defs/{group}{short}"}
    raise SystemExit(f"no Kubernetes definition for {name}")


def type_schema(kind: str, models: dict, k8s_definitions: set[str], pending: list[str]) -> dict:
    if kind in SCALARS:
        return dict(SCALARS[kind])
    if match := re.fullmatch(r"list\[(.+)\]", kind):
        return {"type": "array", "items": type_schema(match[1], models, k8s_definitions, pending)}
    if match := re.fullmatch(r"dict\(str, (.+)\)", kind):
        return {
            "type": "object",
            "additionalProperties": type_schema(match[1], models, k8s_definitions, pending),
        }
    if kind in models:
        pending.append(kind)
        return {"$ref": f"#/$defs/{kind}"}
    if re.match(r"V1(alpha|beta)\d", kind):  # referred to but missing from the SDK: left unchecked
        UNCHECKED.add(kind)
        return {}
    return k8s_ref(kind, k8s_definitions)


def generate(models_dir: Path, version: str, k8s_definitions: set[str]) -> dict:
    models = read_models(models_dir)
    defs: dict[str, dict] = {}
    pending = [cls for cls, _ in ROOTS.values()]
    while pending:
        name = pending.pop()
        if name in defs:
            continue
        model = models[name]
        properties = {
            model["names"][attr]: type_schema(kind, models, k8s_definitions, pending)
            for attr, kind in model["types"].items()
            if attr != "status"
        }
        defs[name] = {
            "type": "object",
            "properties": properties,
            "required": [model["names"][attr] for attr in model["required"]],
            "additionalProperties": False,
        }
    for kind, (cls, api_version) in ROOTS.items():
        defs[cls]["properties"]["apiVersion"] = {"const": api_version}
        defs[cls]["properties"]["kind"] = {"const": kind}
        defs[cls]["required"] = sorted({"apiVersion", "kind", "metadata", "spec", *defs[cls]["required"]})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Generated by tests/deploy/kserve_schema.py from the kserve {version} wheel's models; "
        f"types missing from them, not checked: {', '.join(sorted(UNCHECKED)) or 'none'}.",
        "oneOf": [{"$ref": f"#/$defs/{cls}"} for cls, _ in ROOTS.values()],
        "$defs": dict(sorted(defs.items())),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import kubernetes_validate.utils as kv

    wheel = Path(argv[1])
    dist_info = next(wheel.glob("kserve-*.dist-info"))
    version = dist_info.name.removeprefix("kserve-").removesuffix(".dist-info")
    latest = kv.latest_version()
    definitions = kv.schema_contents(f"kubernetes-json-schema/v{latest}-local-strict/_definitions.json", latest)
    schema = generate(wheel / "kserve" / "models", version, set(definitions["$defs"]))
    SCHEMAS.mkdir(exist_ok=True)
    out = SCHEMAS / "kserve.json"
    out.write_text(json.dumps(schema, indent=1) + "\n")
    print(f"wrote {out} ({len(schema['$defs'])} KServe types, kserve {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
