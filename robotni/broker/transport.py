"""Broker settings that must agree with Robotni's own: folders, polling, redelivery timeouts."""

from __future__ import annotations

from typing import Any

from robotni.config import Settings
from robotni.worktypes.registry import Registry

# Redis redelivers an unacked message after its visibility timeout: it must outlast the longest job.
VISIBILITY_MARGIN_SECONDS = 600


def transport_class(settings: Settings) -> str | None:
    """Our filesystem transport fixes a lost-message race in kombu's, our Redis one a cost of each command; other
    brokers (and Redis over TLS or Sentinel) use kombu's own."""
    if settings.uses_filesystem_broker:
        return "robotni.broker.fstransport:Transport"
    return "robotni.broker.redistransport:Transport" if settings.broker_url.startswith("redis://") else None


def transport_options(settings: Settings, registry: Registry) -> dict[str, Any]:
    if settings.uses_filesystem_broker:
        return filesystem_options(settings)
    options: dict[str, Any] = {"polling_interval": settings.poll_interval}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        longest = max((t.hard_time_limit for t in registry.values()), default=0)
        options["visibility_timeout"] = int(longest + VISIBILITY_MARGIN_SECONDS)
    return options


def filesystem_options(settings: Settings) -> dict[str, Any]:
    """Absolute folders (kombu's defaults are relative to the working directory) on one file system.

    Messages are claimed by renaming them into `processed`, which is atomic only on one file system; kombu's
    default target, the temp folder, may be another one, where two workers could both copy one message.
    """
    folders = {name: settings.broker_dir / name for name in ("queue", "control", "processed")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "control_folder": str(folders["control"]),
        "processed_folder": str(folders["processed"]),
        "store_processed": True,
        "polling_interval": settings.poll_interval,
    }
