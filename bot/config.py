"""Settings from the environment (and `.env`), with secrets masked in repr."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.graph import GraphConfig
from core.oversight import rules as oversight_rules
from core.rooms.templates import SHIPPED

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _split(value: str | None) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting Opsroom reads; `.env.example` documents each one."""

    host: str = "127.0.0.1"
    port: int = 3978
    database_url: str | None = None
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    env: str = "local"
    home_tenant_id: str = ""
    home_domains: frozenset[str] = frozenset()
    officers_group: str = ""
    policy_file: str = ""
    supervisors: frozenset[str] = frozenset()
    timezone: str = "Europe/London"
    graph_tenant_id: str = ""
    graph_client_id: str = ""
    graph_client_secret: str = field(default="", repr=False)
    graph_url: str = ""
    graph_login_url: str = ""
    log_level: str = "INFO"
    # Bot Framework endpoints; left empty they are the public cloud's. Tests point them at fakes.
    openid_metadata_url: str = ""
    token_issuer: str = ""
    login_url: str = ""
    oauth_scope: str = ""
    member_cache_seconds: int = 600
    templates_dir: str = ""
    dedupe_days: int = 7
    audit_signing_key_file: str = ""
    digest_grace_until: str = "12:00"
    """Room time until which a digest missed while the bot was down is still sent on start (else skipped)."""
    guest_max_days: int = 90
    oversight_file: str = ""
    """The misuse rules (TOML); empty: the shipped policies/oversight.toml."""
    oversight_seconds: int = 5
    """How often each process's misuse monitor reads the audit trail on."""
    metrics_port: int = 0
    """0: GET /metrics on the bot's own port; another: a listener of its own (and not on the main port)."""
    metrics_host: str = ""
    """Where that listener binds (empty: HOST)."""
    shutdown_timeout: int = 25
    """Seconds a graceful shutdown (SIGTERM) may take in all, under Kubernetes' default 30 s grace."""
    shutdown_drain: int = 0
    """Seconds after SIGTERM that the listener stays open answering 503 (readiness fails) before it closes."""

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr:
                value = "***" if value else ""
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def local_mode(self) -> bool:
        """No app id: inbound requests are not authenticated (development only)."""
        return not self.app_id

    @property
    def graph(self) -> GraphConfig:
        """Microsoft Graph settings (`.configured` is false unless all three credentials are set)."""
        return GraphConfig.from_values(
            self.graph_tenant_id, self.graph_client_id, self.graph_client_secret,
            self.graph_url, self.graph_login_url,
        )  # fmt: skip

    def template_dirs(self) -> list[Path]:
        """Where room templates come from: the shipped ones, then the force's own."""
        dirs = [SHIPPED]
        if self.templates_dir:
            dirs.append(Path(self.templates_dir))
        return dirs

    def oversight_rules(self) -> oversight_rules.Rules:
        """The misuse rules the bot runs; RulesError (naming the file, rule and key) when unusable."""
        return oversight_rules.load(Path(self.oversight_file) if self.oversight_file else None)

    @property
    def production(self) -> bool:
        """Running for real."""
        return self.env == "production"

    def check(self) -> None:
        """Refuse combinations that must never run."""
        if not 1 <= self.guest_max_days <= 366:
            raise SettingsError(f"OPSROOM_GUEST_MAX_DAYS must be 1 to 366 days (got {self.guest_max_days})")
        if self.production and self.local_mode:
            raise SettingsError(
                "OPSROOM_ENV=production needs MicrosoftAppId (and its password): "
                "refusing to accept unauthenticated requests"
            )
        if self.production and not self.home_tenant_id:
            raise SettingsError("OPSROOM_ENV=production needs OPSROOM_HOME_TENANT_ID")
        if self.production and not self.home_domains and not self.graph.configured:
            raise SettingsError(
                "OPSROOM_ENV=production needs OPSROOM_HOME_DOMAINS (the force's email domains) or "
                "Microsoft Graph (OPSROOM_GRAPH_*): without either nobody can be told to be an officer"
            )
        if self.officers_group and not self.graph.configured:
            raise SettingsError("OPSROOM_OFFICERS_GROUP needs Microsoft Graph (OPSROOM_GRAPH_*) to check it")
        if self.policy_file and not Path(self.policy_file).is_file():
            raise SettingsError(f"OPSROOM_POLICY_FILE {self.policy_file!r} is not a file")
        if self.production and not self.audit_signing_key_file:
            raise SettingsError("OPSROOM_ENV=production needs OPSROOM_AUDIT_SIGNING_KEY_FILE (the audit "
                                "signing key, kept outside the database)")
        key_file = self.audit_signing_key_file
        if key_file and not Path(key_file).is_file():
            raise SettingsError(f"OPSROOM_AUDIT_SIGNING_KEY_FILE {key_file!r} is not a file")
        if self.oversight_file and not Path(self.oversight_file).is_file():
            raise SettingsError(f"OPSROOM_OVERSIGHT_FILE {self.oversight_file!r} is not a file")
        try:
            self.oversight_rules()
        except oversight_rules.RulesError as exc:
            raise SettingsError(f"OPSROOM_OVERSIGHT_FILE: the misuse rules cannot be used: {exc}") from exc
        if not 1 <= self.oversight_seconds <= 3600:
            raise SettingsError("OPSROOM_OVERSIGHT_SECONDS must be 1 to 3600 seconds")
        if not 0 <= self.metrics_port <= 65535 or (self.metrics_port and self.metrics_port == self.port):
            raise SettingsError("OPSROOM_METRICS_PORT must be 0 (serve /metrics on PORT) or another port, "
                                "1 to 65535")  # fmt: skip
        if not 1 <= self.shutdown_timeout <= 600:
            raise SettingsError("OPSROOM_SHUTDOWN_TIMEOUT must be 1 to 600 seconds")
        if not 0 <= self.shutdown_drain < self.shutdown_timeout:
            raise SettingsError("OPSROOM_SHUTDOWN_DRAIN_SECONDS must be 0 or more, and less than "
                                "OPSROOM_SHUTDOWN_TIMEOUT")  # fmt: skip
        if self.dedupe_days < 1:
            raise SettingsError("OPSROOM_DEDUPE_DAYS must be at least 1")
        if self.env not in ("local", "production"):
            raise SettingsError("OPSROOM_ENV must be 'local' or 'production'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"OPSROOM_TIMEZONE {self.timezone!r} is not a known time zone") from exc
        if not _HHMM.fullmatch(self.digest_grace_until):
            raise SettingsError("OPSROOM_DIGEST_GRACE_UNTIL must be a 24-hour time HH:MM, e.g. 12:00")
        if self.app_type not in ("MultiTenant", "SingleTenant", "UserAssignedMSI"):
            raise SettingsError("MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI")


def load(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read settings: the process environment wins over `.env`."""
    merged: dict[str, str] = {}
    if env_file is not None and env_file.exists():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)

    def get(name: str, default: str = "") -> str:
        return merged.get(name, default).strip()

    def integer(name: str, default: int) -> int:
        raw = get(name)
        try:
            return int(raw) if raw else default
        except ValueError as exc:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc

    settings = Settings(
        host=get("HOST", "127.0.0.1"),
        port=integer("PORT", 3978),
        database_url=get("DATABASE_URL") or None,
        app_id=get("MicrosoftAppId"),
        app_password=get("MicrosoftAppPassword"),
        app_type=get("MicrosoftAppType", "MultiTenant") or "MultiTenant",
        app_tenant_id=get("MicrosoftAppTenantId"),
        env=get("OPSROOM_ENV", "local").lower() or "local",
        home_tenant_id=get("OPSROOM_HOME_TENANT_ID").lower(),
        home_domains=frozenset(d.lstrip("@") for d in _split(get("OPSROOM_HOME_DOMAINS"))),
        officers_group=get("OPSROOM_OFFICERS_GROUP").lower(),
        policy_file=get("OPSROOM_POLICY_FILE"),
        supervisors=_split(get("OPSROOM_SUPERVISORS")),
        timezone=get("OPSROOM_TIMEZONE", "Europe/London") or "Europe/London",
        graph_tenant_id=get("OPSROOM_GRAPH_TENANT_ID"),
        graph_client_id=get("OPSROOM_GRAPH_CLIENT_ID"),
        graph_client_secret=get("OPSROOM_GRAPH_CLIENT_SECRET"),
        graph_url=get("OPSROOM_GRAPH_URL"),
        graph_login_url=get("OPSROOM_GRAPH_LOGIN_URL"),
        log_level=get("OPSROOM_LOG_LEVEL", "INFO").upper() or "INFO",
        openid_metadata_url=get("OPSROOM_OPENID_METADATA_URL"),
        token_issuer=get("OPSROOM_TOKEN_ISSUER"),
        login_url=get("OPSROOM_LOGIN_URL"),
        oauth_scope=get("OPSROOM_OAUTH_SCOPE"),
        member_cache_seconds=integer("OPSROOM_MEMBER_CACHE_SECONDS", 600),
        templates_dir=get("OPSROOM_TEMPLATES_DIR"),
        dedupe_days=integer("OPSROOM_DEDUPE_DAYS", 7),
        audit_signing_key_file=get("OPSROOM_AUDIT_SIGNING_KEY_FILE"),
        digest_grace_until=get("OPSROOM_DIGEST_GRACE_UNTIL", "12:00") or "12:00",
        guest_max_days=integer("OPSROOM_GUEST_MAX_DAYS", 90),
        oversight_file=get("OPSROOM_OVERSIGHT_FILE"),
        oversight_seconds=integer("OPSROOM_OVERSIGHT_SECONDS", 5),
        metrics_port=integer("OPSROOM_METRICS_PORT", 0),
        metrics_host=get("OPSROOM_METRICS_HOST"),
        shutdown_timeout=integer("OPSROOM_SHUTDOWN_TIMEOUT", 25),
        shutdown_drain=integer("OPSROOM_SHUTDOWN_DRAIN_SECONDS", 0),
    )
    settings.check()
    return settings
