"""What the benchmark builds: requirement sets and their Lambda targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WORKLOADS", "Workload", "select"]


@dataclass(frozen=True)
class Workload:
    key: str
    requirements: tuple[str, ...]
    runtime: str = "python3.12"
    arch: str = "x86_64"

    @property
    def label(self) -> str:
        reqs = " ".join(self.requirements)
        return f"{reqs} ({self.runtime}, {self.arch})"

    @property
    def short(self) -> str:
        reqs = "\n".join(self.requirements) if len(self.requirements) > 1 else self.requirements[0]
        return reqs + ("\n(arm64)" if self.arch != "x86_64" else "")


WORKLOADS: tuple[Workload, ...] = (
    Workload("requests", ("requests",)),
    Workload("prp", ("pandas", "requests", "pydantic")),
    Workload("sklearn", ("scikit-learn",)),
    Workload("prp-arm64", ("pandas", "requests", "pydantic"), arch="arm64"),
    # The memory check: a layer near Lambda's 250 MB unzipped limit.
    Workload("large", ("pandas", "scikit-learn", "pydantic", "requests")),
)

# The workload the targets are stated for.
HEADLINE = "prp"


def select(keys: Sequence[str] | None) -> tuple[Workload, ...]:
    """The workloads named by *keys* (all when empty), in the table's order."""
    if not keys:
        return WORKLOADS
    known = {w.key: w for w in WORKLOADS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(w for w in WORKLOADS if w.key in keys)
