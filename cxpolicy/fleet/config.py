"""`cxpolicy serve`'s fleet options in, the replica's `Engine` and `Fleet` out.

Input: the `--bundle`, `--bundle-key`, `--bundle-poll`, `--freeze-store`, `--replica` and
`--anomalies` options (or, in a worker of `--workers N`, the `CXPOLICY_*` variables they are
passed through). Output: a `BundleEngine` when a bundle is configured (else None: serve the
paths as before) and a `Fleet` when anything fleet-related is on.

Why a module of its own: `cli/serve.py` stays about serving; it adds these options with one
decorator and asks this module for the engine and the fleet, in the parent and in every worker
alike, so the two start paths cannot configure a replica differently.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from cxpolicy.fleet.service import Fleet
    from cxpolicy.grants.tokens import GrantKeys
    from cxpolicy.service.reload import Engine

__all__ = ["FleetOptions", "fleet_options"]

F = TypeVar("F", bound=Callable[..., Any])

ENV = {
    "bundle": "CXPOLICY_BUNDLE",
    "bundle_key": "CXPOLICY_BUNDLE_KEY",
    "bundle_poll": "CXPOLICY_BUNDLE_POLL",
    "freeze_store": "CXPOLICY_FREEZE_STORE",
    "replica": "CXPOLICY_REPLICA",
    "anomalies": "CXPOLICY_ANOMALIES",
    "stream": "CXPOLICY_STREAM",
    "stream_spool": "CXPOLICY_STREAM_SPOOL",
    "otel": "CXPOLICY_OTEL",
}


def fleet_options(f: F) -> F:
    """The serve options for running in a fleet (docs/operations.md)."""
    opts = [
        click.option("--bundle", metavar="FILE|DIR|URL",
                     help="Serve a policy bundle (file, unpacked directory or http(s) URL, polled with ETag) "
                     "instead of -p paths."),
        click.option("--bundle-key", type=click.Path(exists=True, dir_okay=False), metavar="PEM",
                     help="Trusted Ed25519 public key(s): only bundles they signed serve; unsigned ones are refused."),
        click.option("--bundle-poll", type=click.FloatRange(0), default=5.0, show_default=True,
                     help="Seconds between checks of --bundle for a new one (0: only on reload)."),
        click.option("--freeze-store", metavar="URL",
                     help="Shared freeze store: postgresql://… (a fleet) or sqlite:///path (one machine)."),
        click.option("--replica", metavar="NAME", help="This replica's name in /v1/status (default host:pid)."),
        click.option("--anomalies", type=click.Path(exists=True, dir_okay=False), metavar="TOML",
                     help="Turn on anomaly signals with these settings (an empty file: the defaults)."),
        click.option("--stream", metavar="URL",
                     help="Also publish every decision: nats://host:4222/SUBJECT?stream=NAME or kafka://host:9092/TOPIC."),
        click.option("--stream-spool", metavar="DIR", default="var/stream-spool", show_default=True,
                     help="Disk spool for --stream (a broker outage loses nothing)."),
        click.option("--otel", is_flag=True, default=None,
                     help="An OpenTelemetry span per decision (needs cxpolicy[otel]; exporter per OTEL_* settings)."),
    ]  # fmt: skip
    for opt in reversed(opts):
        f = opt(f)
    return f


@dataclass(frozen=True, slots=True)
class FleetOptions:
    bundle: str | None = None
    bundle_key: str | None = None
    bundle_poll: float = 5.0
    freeze_store: str | None = None
    replica: str | None = None
    anomalies: str | None = None
    stream: str | None = None
    stream_spool: str = "var/stream-spool"
    otel: bool = False

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> FleetOptions:
        given: dict[str, Any] = {k: opts[k] for k in ENV if opts.get(k) is not None}
        return cls(**given)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> FleetOptions:
        raw: dict[str, Any] = {k: env[v] for k, v in ENV.items() if env.get(v)}
        if "bundle_poll" in raw:
            raw["bundle_poll"] = float(raw["bundle_poll"])
        if "otel" in raw:
            raw["otel"] = raw["otel"].strip().lower() in ("1", "true", "yes", "on")
        return cls(**raw)

    def to_env(self) -> dict[str, str]:
        """For `--workers N`: what each worker's `from_env` reads back (paths made absolute)."""
        out: dict[str, str] = {}
        for name, var in ENV.items():
            value = getattr(self, name)
            if value is None or value is False:
                continue
            if name in ("bundle_key", "anomalies", "stream_spool") or (name == "bundle" and "://" not in str(value)):
                value = os.path.abspath(str(value))
            out[var] = str(value)
        return out

    @property
    def active(self) -> bool:
        return bool(self.freeze_store or self.anomalies or self.bundle or self.replica or self.stream or self.otel)

    def engine(self, *, detect: bool, grant_keys: GrantKeys | None = None) -> Engine | None:
        """The `BundleEngine` for `--bundle` (raises BundleError/PolicyError when the first
        bundle cannot serve), or None when the policy comes from paths."""
        if not self.bundle:
            return None
        from cxpolicy.fleet.bundle import load_public_keys
        from cxpolicy.fleet.source import BundleEngine

        keys = load_public_keys(Path(self.bundle_key).read_bytes()) if self.bundle_key else None
        return BundleEngine(self.bundle, keys=keys, poll=self.bundle_poll, detect=detect, grant_keys=grant_keys)

    def fleet(self) -> Fleet | None:
        if not self.active:
            return None
        from cxpolicy.fleet.service import Fleet

        watcher = None
        if self.freeze_store:
            from cxpolicy.fleet.freeze import FreezeWatcher, open_freeze_store

            watcher = FreezeWatcher(open_freeze_store(self.freeze_store))
        detector = None
        if self.anomalies:
            from cxpolicy.fleet.anomalies import AnomalyConfig, AnomalyDetector

            with open(self.anomalies, "rb") as fh:
                detector = AnomalyDetector(AnomalyConfig.from_mapping(tomllib.load(fh)))
        stream = None
        if self.stream:
            from cxpolicy.fleet.stream import open_stream

            stream = open_stream(self.stream, self.stream_spool)  # each process claims a slot
        spans = None
        if self.otel:
            from cxpolicy.fleet.tracing import DecisionSpans

            spans = DecisionSpans()
        return Fleet(replica=self.replica, freezes=watcher, anomalies=detector, stream=stream, spans=spans)
