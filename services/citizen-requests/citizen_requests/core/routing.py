"""Routing and SLA rules: which OPD owns a category, and how fast it must acknowledge and resolve.

Values only: config.py reads them from the YAML file and the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from smartcity.v1 import requests_pb2 as pb


@dataclass(frozen=True)
class SlaRule:
    """How long after submission a request must be acknowledged and resolved."""

    acknowledge_s: float
    resolve_s: float


@dataclass(frozen=True)
class CategoryConfig:
    """One category: the OPD it routes to, its default priority and its SLA rules."""

    name: str
    opd: str
    priority: pb.Priority
    # Rules by priority (pb.Priority values); 0 (unspecified) holds the category default.
    sla: Mapping[pb.Priority, SlaRule]


@dataclass(frozen=True)
class RequestsConfig:
    """Every category, the command center (owner of what no category claims), duplicate bounds."""

    categories: Mapping[str, CategoryConfig]
    command_center: str
    priority_defaults: Mapping[pb.Priority, SlaRule] = field(default_factory=dict)
    duplicate_distance_m: float = 150.0
    duplicate_window_s: float = 86400.0

    def category(self, name: str) -> CategoryConfig | None:
        return self.categories.get(name)

    def opd_for(self, category: str) -> str:
        """The OPD a category routes to; what no category claims goes to the command center."""
        found = self.categories.get(category)
        return found.opd if found else self.command_center

    def default_priority(self, category: str) -> pb.Priority:
        found = self.categories.get(category)
        return found.priority if found else pb.PRIORITY_NORMAL

    def sla_for(self, category: str, priority: pb.Priority) -> SlaRule:
        found = self.categories.get(category)
        if found is None:
            raise KeyError(f"unknown category {category!r}")
        if priority in found.sla:
            return found.sla[priority]
        if priority in self.priority_defaults:
            return self.priority_defaults[priority]
        return found.sla[pb.PRIORITY_UNSPECIFIED]
