"""Configuration of the citizen-requests service: routing and SLAs (YAML) and runtime knobs (env).

The YAML file (`requests.yaml` beside this module, or REQUESTS_CONFIG_PATH) says which OPD owns
which category and how fast each must be acknowledged and resolved; it is read into the core's
`RequestsConfig` (core/routing.py). Everything else (timer
cadences, tolerances, memory bounds) comes from the environment with local defaults, so the demo
and the tests can shorten them.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from citizen_requests.core.routing import CategoryConfig, RequestsConfig, SlaRule
from smartcity.event_loop import DEFAULT_EVENT_LOOP, event_loop_from_env
from smartcity.settings import SettingsError, env_float, env_int, env_str
from smartcity.v1 import requests_pb2 as pb

DEFAULT_CONFIG_PATH = Path(__file__).with_name("requests.yaml")

PRIORITIES: dict[str, pb.Priority] = {
    "low": pb.PRIORITY_LOW,
    "normal": pb.PRIORITY_NORMAL,
    "high": pb.PRIORITY_HIGH,
    "emergency": pb.PRIORITY_EMERGENCY,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(ValueError):
    """The routing/SLA file or an override cannot be used."""


def parse_duration(value: str | float) -> float:
    """'90s', '5m', '4h', '2d' or a number of seconds, to seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ConfigError(f"{value!r} is not a duration (use e.g. 90s, 5m, 4h, 2d)")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"duration {value!r} must be positive")
    return seconds


def _rule(raw: Any, where: str) -> SlaRule:
    if not isinstance(raw, Mapping) or "acknowledge" not in raw or "resolve" not in raw:
        raise ConfigError(f"{where}: an SLA needs 'acknowledge' and 'resolve' durations")
    return SlaRule(parse_duration(raw["acknowledge"]), parse_duration(raw["resolve"]))


def _priority(name: str, where: str) -> pb.Priority:
    if name == "default":
        return pb.PRIORITY_UNSPECIFIED
    if name not in PRIORITIES:
        raise ConfigError(f"{where}: unknown priority {name!r} (use {', '.join(PRIORITIES)} or default)")
    return PRIORITIES[name]


def _category(name: str, raw: Mapping[str, Any]) -> CategoryConfig:
    sla_raw = raw.get("sla") or {}
    sla = {_priority(str(p), name): _rule(r, f"{name}.sla.{p}") for p, r in sla_raw.items()}
    if pb.PRIORITY_UNSPECIFIED not in sla:
        raise ConfigError(f"category {name}: sla.default is required")
    if not raw.get("opd"):
        raise ConfigError(f"category {name}: opd is required")
    priority = _priority(str(raw.get("priority", "normal")), name)
    return CategoryConfig(name=name, opd=str(raw["opd"]), priority=priority or pb.PRIORITY_NORMAL,
                          sla=sla)


def _scaled(rule: SlaRule, scale: float) -> SlaRule:
    return SlaRule(rule.acknowledge_s * scale, rule.resolve_s * scale)


def _env_overridden(category: CategoryConfig, defaults: Mapping[pb.Priority, SlaRule]) -> CategoryConfig:
    """Applies REQUESTS_SLA_<CATEGORY>_<ACKNOWLEDGE|RESOLVE>_S to every priority of a category.

    The override wins over the priority defaults too, so those are copied into the category
    first (otherwise an emergency-priority request would still get the global 5 minutes).
    """
    prefix = f"REQUESTS_SLA_{category.name.upper()}_"
    ack = env_float(prefix + "ACKNOWLEDGE_S", 0.0)
    resolve = env_float(prefix + "RESOLVE_S", 0.0)
    if ack < 0 or resolve < 0:
        raise SettingsError(f"{prefix}*_S must not be negative")
    if not ack and not resolve:
        return category
    rules = dict(defaults) | dict(category.sla)
    sla = {p: SlaRule(ack or r.acknowledge_s, resolve or r.resolve_s) for p, r in rules.items()}
    return CategoryConfig(category.name, category.opd, category.priority, sla)


def parse_config(raw: Mapping[str, Any]) -> RequestsConfig:
    """A config from the parsed YAML document, with the environment's overrides applied."""
    categories_raw = raw.get("categories")
    if not isinstance(categories_raw, Mapping) or not categories_raw:
        raise ConfigError("the config needs a non-empty 'categories' mapping")
    scale = env_float("REQUESTS_SLA_SCALE", 1.0)
    if scale <= 0:
        raise SettingsError("REQUESTS_SLA_SCALE must be positive")
    defaults = {_priority(str(p), "priority_defaults"): _scaled(_rule(r, f"priority_defaults.{p}"), scale)
                for p, r in (raw.get("priority_defaults") or {}).items()}
    categories: dict[str, CategoryConfig] = {}
    for name, body in categories_raw.items():
        parsed = _category(str(name), body or {})
        scaled = CategoryConfig(parsed.name, parsed.opd, parsed.priority,
                                {p: _scaled(r, scale) for p, r in parsed.sla.items()})
        categories[parsed.name] = _env_overridden(scaled, defaults)
    dup = raw.get("duplicates") or {}
    return RequestsConfig(
        categories=categories,
        command_center=str(raw.get("command_center", "COMMAND_CENTER")),
        priority_defaults=defaults,
        duplicate_distance_m=env_float("REQUESTS_DUPLICATE_DISTANCE_M",
                                       float(dup.get("distance_m", 150.0))),
        duplicate_window_s=env_float("REQUESTS_DUPLICATE_WINDOW_S",
                                     parse_duration(dup.get("window", "24h"))),
    )


def load_config(path: str | Path | None = None) -> RequestsConfig:
    """Reads the routing/SLA file: `path`, else REQUESTS_CONFIG_PATH, else the packaged one."""
    chosen = Path(path or env_str("REQUESTS_CONFIG_PATH", "") or DEFAULT_CONFIG_PATH)
    try:
        with chosen.open() as handle:
            raw = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {chosen}: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{chosen}: expected a mapping at the top level")
    return parse_config(raw)


@dataclass(frozen=True)
class ServiceSettings:
    """Runtime knobs of the stream processor (all from the environment).

    REQUESTS_SLA_CHECK_INTERVAL_S     how often the timer looks for SLA breaches (default 5)
    REQUESTS_SLA_ALLOWED_LATENESS_S   how late (event time) a command may arrive and still count
                                      as in time: the timer flags a breach only this long after
                                      the due time (default 30)
    REQUESTS_OUTCOME_MEMORY           command outcomes remembered per request, so a redelivered
                                      command re-emits its outcome instead of applying again (64)
    REQUESTS_HISTORY_LIMIT            history entries kept on a request, newest (default 200)
    REQUESTS_STATS_FLUSH_S            how long changed stats wait to be published together (0.5)
    REQUESTS_STATS_REFRESH_S          how often every stats record is republished (default 30)
    REQUESTS_STATS_WINDOW_DAYS        rolling window of the statistics (default 90): a finished
                                      request whose last change is older leaves `total` and the
                                      medians/p90 (and the summaries topic); open ones never leave
    REQUESTS_UTC_OFFSET_H             the city's UTC offset for "today" and Open311 times (7, WIB)
    REQUESTS_COMMAND_BATCH_WAIT_S     how long a partial batch of commands waits for more before it
                                      is applied (default 0.01): each waiting citizen pays up to
                                      this much; a busy stream fills its batches without waiting
    REQUESTS_BROKER_SESSION_TIMEOUT_S consumer session timeout: how fast a dead worker's partitions
                                      move to another one (default 30)
    EVENT_LOOP                        uvloop or asyncio (default uvloop: see smartcity.event_loop)
    REQUESTS_DATADIR                  Faust's data directory, even for in-memory tables (default
                                      smartcity-faust under the system temp directory)
    """

    sla_check_interval_s: float = 5.0
    sla_allowed_lateness_s: float = 30.0
    outcome_memory: int = 64
    history_limit: int = 200
    stats_flush_s: float = 0.5
    stats_refresh_s: float = 30.0
    stats_window_days: float = 90.0
    utc_offset_h: float = 7.0
    command_batch_wait_s: float = 0.01
    broker_session_timeout_s: float = 30.0
    event_loop: str = DEFAULT_EVENT_LOOP
    # Kept out of the working tree.
    datadir: str = str(Path(tempfile.gettempdir()) / "smartcity-faust")

    @classmethod
    def from_env(cls) -> ServiceSettings:
        settings = cls(
            sla_check_interval_s=env_float("REQUESTS_SLA_CHECK_INTERVAL_S", cls.sla_check_interval_s),
            sla_allowed_lateness_s=env_float("REQUESTS_SLA_ALLOWED_LATENESS_S",
                                             cls.sla_allowed_lateness_s),
            outcome_memory=env_int("REQUESTS_OUTCOME_MEMORY", cls.outcome_memory),
            history_limit=env_int("REQUESTS_HISTORY_LIMIT", cls.history_limit),
            stats_flush_s=env_float("REQUESTS_STATS_FLUSH_S", cls.stats_flush_s),
            stats_refresh_s=env_float("REQUESTS_STATS_REFRESH_S", cls.stats_refresh_s),
            stats_window_days=env_float("REQUESTS_STATS_WINDOW_DAYS", cls.stats_window_days),
            utc_offset_h=env_float("REQUESTS_UTC_OFFSET_H", cls.utc_offset_h),
            command_batch_wait_s=env_float("REQUESTS_COMMAND_BATCH_WAIT_S", cls.command_batch_wait_s),
            broker_session_timeout_s=env_float("REQUESTS_BROKER_SESSION_TIMEOUT_S",
                                               cls.broker_session_timeout_s),
            datadir=env_str("REQUESTS_DATADIR", cls.datadir),
            event_loop=event_loop_from_env(cls.event_loop),
        )
        if settings.outcome_memory < 1 or settings.history_limit < 1:
            raise SettingsError("REQUESTS_OUTCOME_MEMORY and REQUESTS_HISTORY_LIMIT must be >= 1")
        if not settings.command_batch_wait_s > 0:  # 0 would make Faust wait for a full batch
            raise SettingsError("REQUESTS_COMMAND_BATCH_WAIT_S must be > 0, "
                                f"not {settings.command_batch_wait_s}")
        if not settings.stats_window_days > 0:  # also refuses nan
            raise SettingsError(f"REQUESTS_STATS_WINDOW_DAYS must be > 0, not {settings.stats_window_days}")
        return settings
