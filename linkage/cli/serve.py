"""``linkage serve``: the officer service over HTTP (FastAPI on uvicorn), on one store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from linkage.cli import ConfigOption, DbOption, _config, err


def serve_command(
    config: ConfigOption = None,
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default: this machine only).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    rate: Annotated[
        int, typer.Option("--rate", min=1, help="Requests a token may make per minute (more: 429 Too Many Requests).")
    ] = 120,
) -> None:
    """Serve the officer API: identities, applications, decisions and the audit, each request authenticated.

    Every request needs `Authorization: Bearer TOKEN` (a token from `linkage users add`) and is written to the
    store's audit. The API's description is served at /docs. The log holds routes, statuses, users and times,
    never a name, NIK or other value.
    """
    import uvicorn

    from linkage.server import create_app

    settings = _config(config)
    path = db or Path(settings.store.path)
    app = create_app(path, rate_per_minute=rate, config=settings)
    err.print(f"serving {path} on http://{host}:{port} (API description at /docs); Ctrl-C stops")
    # uvicorn's access log prints each request's path, which can hold a record id: ours logs the route instead
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
