"""``eventconfig gateway``: the HTTP API and web console; ``eventconfig gateway-secret``: auth file entries.

Example::

    eventconfig gateway --port 8080                          # development mode: nobody is verified
    eventconfig gateway --auth-file gateway-auth.yaml        # production mode: credentials required
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, fail, load_settings, reloading_on_hangup, run
from eventconfig.errors import EventConfigError
from eventconfig.gateway.auth import LoginChecker, hash_password, new_token, token_digest
from eventconfig.gateway.throttle import LoginThrottle

log = logging.getLogger("eventconfig.gateway")


@click.command("gateway", context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, envvar="EVENTCONFIG_GATEWAY_HOST",
              help="Interface to listen on [env EVENTCONFIG_GATEWAY_HOST].")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              envvar="EVENTCONFIG_GATEWAY_PORT", help="HTTP port [env EVENTCONFIG_GATEWAY_PORT].")
@click.option("--auth-file", type=click.Path(dir_okay=False, path_type=Path), envvar="EVENTCONFIG_GATEWAY_AUTH_FILE",
              help="Tokens and users mapped to actors; without it nobody is verified (development mode) "
                   "[env EVENTCONFIG_GATEWAY_AUTH_FILE].")
@click.option("--view-path", type=click.Path(file_okay=False, path_type=Path),
              help="The gateway's local view (default DATA_DIR/gateway-view; one per gateway process).")
@click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="How long a write waits for the service.")
@click.pass_context
def gateway_cmd(ctx: click.Context, host: str, port: int, auth_file: Path | None, view_path: Path | None,
                request_timeout: float) -> None:
    """Serve the HTTP API (/v1, /openapi.json) and the web console (/) of this deployment."""
    try:  # the web framework is an extra, imported only by this command
        from eventconfig.gateway.app import GatewayServer, create_app
        from eventconfig.gateway.backend import Backend
    except ImportError as exc:
        fail(f"the gateway needs its extra: pip install 'eventconfig[gateway]' ({exc})")
    settings = load_settings(ctx)
    try:
        throttle = LoginThrottle(settings.gateway_login_failures, settings.gateway_login_window_ms / 1000)
        auth = LoginChecker.from_file(auth_file, throttle) if auth_file else LoginChecker()
    except EventConfigError as exc:
        fail(str(exc))
    if auth.production:
        log.info("production mode", extra={"fields": {"auth_file": auth_file, "tokens": len(auth.tokens),
                                                      "users": len(auth.users)}})
    else:
        log.warning("development mode: no auth file, so no caller is verified; writes are recorded as "
                    "'anonymous' or 'unverified:<X-Eventconfig-Actor header>'. Use --auth-file in production.")
    backend = Backend(settings, view_path, request_timeout=request_timeout)

    async def serve() -> None:
        await backend.start()
        try:
            with reloading_on_hangup():
                await GatewayServer(create_app(backend, auth), host, port).serve()
        finally:
            await backend.stop()

    run(serve())


@click.command("gateway-secret", context_settings=CONTEXT_SETTINGS)
@click.argument("kind", type=click.Choice(["token", "password"]))
def gateway_secret_cmd(kind: str) -> None:
    """Print an auth file entry: a new random bearer token and its hash, or the hash of a password."""
    if kind == "token":
        token = new_token()
        click.echo(f"token:  {token}\n  (give it to the client: `Authorization: Bearer {token}`)")
        click.echo(f"sha256: {token_digest(token)}\n  (put it in the auth file: tokens: [{{actor: ..., sha256: ...}}])")
        return
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    click.echo(hash_password(password))
