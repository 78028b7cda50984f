"""Configuration from ``TAMGA_*`` environment variables, with embedded-mode defaults.

Every variable is listed in the README; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse_many

__all__ = ["DEFAULT_PKCS11_MODULE", "Config", "ConfigError"]

DEFAULT_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's softhsm2 package


class ConfigError(Exception):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class Config:
    home: Path
    database_url: str
    pkcs11_module: str
    public_url: str
    bind: str
    workers: int
    ca_pin: str | None = field(default=None, repr=False)  # None: read secrets/tamga-ca.pin
    cloud_pin: str | None = field(default=None, repr=False)
    root_cert: Path | None = None  # production: the national root's certificate
    log_level: str = "info"
    maintenance_window: bool = True  # Fridays 17:30-20:30 Bishkek: signing answers 503
    # Mail: activation codes and notices leave through this SMTP server. The default is the
    # development sink (`tamga mail sink`, started by `make run`) writing $TAMGA_HOME/mail/.
    smtp_url: str = field(default="smtp://127.0.0.1:8025", repr=False)
    mail_from: str = "Tamga <noreply@tamga.localhost>"
    # Rate limits (web/limits.py), each per gunicorn worker; and how many proxies before the app
    # set X-Forwarded-For (0: none, the socket peer is the client).
    trusted_proxies: int = 0
    rate_limits: bool = True
    limit_auth_failures: str = "10/minute"
    limit_client: str = "6000/minute"
    limit_public: str = "300/minute"
    # Who sequences the audit journal (db.sequencer): "inline" after each commit (the default on
    # SQLite), or "worker": `tamga worker`'s sequencer thread alone (the default on PostgreSQL).
    audit_sequencer: str = "auto"

    @property
    def inline_audit(self) -> bool:
        """Whether this process sequences audit entries after each of its commits."""
        if self.audit_sequencer == "auto":
            return self.database_url.startswith("sqlite")
        return self.audit_sequencer == "inline"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        home = Path(env.get("TAMGA_HOME", "./var")).expanduser().resolve()
        workers_text = env.get("TAMGA_WORKERS", "2")
        try:
            workers = int(workers_text)
        except ValueError:
            raise ConfigError(
                f"TAMGA_WORKERS must be a whole number, not {workers_text!r}"
            ) from None
        if not 1 <= workers <= 64:
            raise ConfigError("TAMGA_WORKERS must be between 1 and 64")
        public_url = env.get("TAMGA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
        if not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"TAMGA_PUBLIC_URL must be an http(s) URL, not {public_url!r}")
        root_cert = env.get("TAMGA_ROOT_CERT")
        window = env.get("TAMGA_MAINTENANCE_WINDOW", "on").lower()
        if window not in ("on", "off"):
            raise ConfigError(f"TAMGA_MAINTENANCE_WINDOW is on or off, not {window!r}")
        smtp_url = env.get("TAMGA_SMTP_URL", "smtp://127.0.0.1:8025")
        if not smtp_url.startswith(("smtp://", "smtps://", "smtp+starttls://")):
            raise ConfigError("TAMGA_SMTP_URL is smtp://, smtps:// or smtp+starttls://host:port")
        proxies_text = env.get("TAMGA_TRUSTED_PROXIES", "0")
        if not proxies_text.isdigit() or not 0 <= int(proxies_text) <= 5:
            raise ConfigError(f"TAMGA_TRUSTED_PROXIES is 0 to 5 (hops), not {proxies_text!r}")
        rate_limits = env.get("TAMGA_RATE_LIMITS", "on").lower()
        if rate_limits not in ("on", "off"):
            raise ConfigError(f"TAMGA_RATE_LIMITS is on or off, not {rate_limits!r}")
        limits = {
            name: _rate(env, f"TAMGA_LIMIT_{name.upper()}", default)
            for name, default in (
                ("auth_failures", cls.limit_auth_failures),
                ("client", cls.limit_client),
                ("public", cls.limit_public),
            )
        }
        audit_sequencer = env.get("TAMGA_AUDIT_SEQUENCER", "auto").lower()
        if audit_sequencer not in ("auto", "inline", "worker"):
            raise ConfigError(
                f"TAMGA_AUDIT_SEQUENCER is auto, inline or worker, not {audit_sequencer!r}"
            )
        return cls(
            home=home,
            database_url=env.get("TAMGA_DATABASE_URL") or f"sqlite:///{home / 'tamga.db'}",
            pkcs11_module=env.get("TAMGA_PKCS11_MODULE", DEFAULT_PKCS11_MODULE),
            public_url=public_url,
            bind=env.get("TAMGA_BIND", "127.0.0.1:8000"),
            workers=workers,
            ca_pin=env.get("TAMGA_CA_PIN") or None,
            cloud_pin=env.get("TAMGA_CLOUD_PIN") or None,
            root_cert=Path(root_cert).expanduser().resolve() if root_cert else None,
            log_level=env.get("TAMGA_LOG_LEVEL", "info").lower(),
            maintenance_window=window == "on",
            smtp_url=smtp_url,
            mail_from=env.get("TAMGA_MAIL_FROM", "Tamga <noreply@tamga.localhost>"),
            trusted_proxies=int(proxies_text),
            rate_limits=rate_limits == "on",
            limit_auth_failures=limits["auth_failures"],
            limit_client=limits["client"],
            limit_public=limits["public"],
            audit_sequencer=audit_sequencer,
        )

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def public_dir(self) -> Path:
        """Files published for relying parties: the CA certificates (``public/ca/``)."""
        return self.home / "public"

    @property
    def crl_publish_dir(self) -> Path:
        """Where CRLs are written for a web server or CDN (issue #4: ``publish/crl/``)."""
        return self.home / "publish" / "crl"

    @property
    def mail_dir(self) -> Path:
        """Where the development mail sink writes each message as an ``.eml`` file."""
        return self.home / "mail"

    @property
    def softhsm_conf(self) -> Path:
        return self.home / "softhsm2.conf"


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """A rate limit such as ``10/minute`` or ``100 per second; 1000 per hour``."""
    text = env.get(name, default).strip()
    try:
        if not parse_many(text):
            raise ValueError(text)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as 10/minute, not {text!r}") from None
    return text
