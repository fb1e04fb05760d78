"""Rendering the chart offline (Helm's SDK) and finding objects in what it rendered."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@dataclass
class Rendered:
    """The objects of one render, with the template each came from, and NOTES.txt."""

    objects: list[dict] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: str = ""

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict:
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        names = [o["metadata"]["name"] for o in self.of_kind(kind)]
        raise KeyError(f"no {kind} named {name} (rendered: {names})")

    def find(self, kind: str, name: str) -> dict | None:
        try:
            return self.get(kind, name)
        except KeyError:
            return None

    def workload(self, role: str) -> dict:
        """The StatefulSet or Deployment of `role` (engine, session, persistence)."""
        for o in self.objects:
            if o.get("kind") in ("StatefulSet", "Deployment") and component(o) == role:
                return o
        raise KeyError(f"no workload for role {role}")

    def pod_spec(self, role: str) -> dict:
        return self.workload(role)["spec"]["template"]["spec"]

    def container(self, role: str) -> dict:
        return self.pod_spec(role)["containers"][0]

    def hooks(self) -> list[dict]:
        return [o for o in self.objects if "helm.sh/hook" in annotations(o)]

    def secret_value(self, name: str, key: str) -> str:
        secret = self.get("Secret", name)
        if key in secret.get("stringData", {}):
            return secret["stringData"][key]
        return base64.b64decode(secret["data"][key]).decode()


def component(obj: dict) -> str | None:
    return obj.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")


def annotations(obj: dict) -> dict:
    return obj.get("metadata", {}).get("annotations") or {}


def env_map(container: dict) -> dict[str, dict]:
    """The container's environment as name -> EnvVar (value or valueFrom)."""
    return {e["name"]: e for e in container.get("env", [])}


def render(chart, values: dict, *, name: str, namespace: str, **options) -> Rendered:
    """Renders `chart` with `values` as an install of release `name` in `namespace`."""
    options.setdefault("is_install", True)
    files = chart.render(values, name=name, namespace=namespace, **options)
    out = Rendered()
    for path in sorted(files):
        text = files[path]
        if path.endswith("NOTES.txt"):
            out.notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.objects.append(doc)
                out.sources.append(path)
    return out
