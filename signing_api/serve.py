"""``tamga serve``: gunicorn with the Tamga app, one PKCS#11 initialisation per worker.

The app is not preloaded: each worker imports and builds it after fork, and the tokens open
on first use inside the worker, so the master never loads the PKCS#11 library.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from signing_api.config import Config

__all__ = ["serve"]

log = logging.getLogger("tamga.serve")


def _post_worker_init(worker: Any) -> None:
    """Log in to both tokens now, in the worker, so the first request does not pay for it."""
    runtime = worker.wsgi.extensions["tamga"]
    for name in ("ca_token", "cloud_token"):
        try:
            getattr(runtime, name).ping()
        except Exception as ex:
            log.warning("worker %s: %s not ready: %s", worker.pid, name, ex)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config) -> None:
        self.tamga_config = config
        super().__init__()

    def load_config(self) -> None:
        settings: dict[str, Any] = {
            "bind": self.tamga_config.bind,
            "workers": self.tamga_config.workers,
            "worker_class": "gthread",
            "threads": 4,  # PKCS#11 calls are serialised by hsm's lock; DB work overlaps
            "preload_app": False,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": self.tamga_config.log_level,
            "timeout": 60,
            "graceful_timeout": 10,
            "post_worker_init": _post_worker_init,
            "proc_name": "tamga",
        }
        # Recent gunicorn opens a control socket under ~/.gunicorn: outside TAMGA_HOME and shared
        # between installations. Tamga does not use it.
        if "control_socket_disable" in self.cfg.settings:
            settings["control_socket_disable"] = True
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from signing_api.app import create_app  # imported in the worker, after fork

        return create_app(self.tamga_config)


def serve(config: Config) -> None:
    _Gunicorn(config).run()
