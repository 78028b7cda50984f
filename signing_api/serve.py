"""``tamga serve``: gunicorn with the Tamga app, one PKCS#11 initialisation per worker.

The app is not preloaded: each worker imports and builds it after fork, and the tokens open
on first use inside the worker, so the master never loads the PKCS#11 library.

gunicorn's threads block on a client that sends slowly: in production a buffering reverse
proxy (``deploy/nginx/tamga.conf``, docs/deployment.md) faces the clients. The limits below
bound what one request may cost even so: the head (request line, fields), the time a worker may
stay silent, and the time a stopping worker gets; bodies are bounded by the app
(``web/limits.py``).
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


def _worker_exit(server: Any, worker: Any) -> None:
    """Journal the failed-authentication counts this worker still holds (``web/limits.py``)."""
    app = getattr(worker, "wsgi", None)
    if app is None:
        return
    try:
        from signing_api.web.limits import flush_failures

        flush_failures(app)
    except Exception:
        log.exception("worker %s: could not journal the failed-authentication counts", worker.pid)


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
            # The request head: gunicorn answers 400 beyond these (nginx's
            # large_client_header_buffers 4 8k refuses long ones first).
            "limit_request_line": 8190,  # gunicorn's maximum
            "limit_request_fields": 64,
            "limit_request_field_size": 8190,
            # A worker silent this long is killed and replaced; a stopping one gets this long
            # to finish its requests.
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "post_worker_init": _post_worker_init,
            "worker_exit": _worker_exit,
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
