"""``eventconfig keys new|list|revoke``: the actors' Ed25519 keys in the service's keyring file (§14.1).

    eventconfig keys new alice --key-file alice.pem      # private key (0600) + public key in the keyring
    eventconfig keys list                                # actor, key fingerprints, groups
    eventconfig keys revoke alice SHA256:...             # one key; without KEY every key of alice

The keyring is ``--keyring`` or the ``auth_keyring_file`` setting; a running service re-reads it
within seconds (docs/design.md §14.4). Errors: one line, exit 1 (a file that cannot be read or
written, an unknown actor or key, a key file that already exists), exit 2 for wrong usage.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from eventconfig.cli.common import CONTEXT_SETTINGS, fail, load_settings
from eventconfig.signing import new_key_pair
from eventconfig.writer.keyring_file import KeyringDocument, fingerprint

keyring_option = click.option("--keyring", type=click.Path(dir_okay=False, path_type=Path),
                              help="The keyring file (default: the auth_keyring_file setting).")


@click.group(context_settings=CONTEXT_SETTINGS)
def keys() -> None:
    """Make, list and revoke the actors' signing keys in the keyring file."""


def _keyring(ctx: click.Context, keyring: Path | None) -> Path:
    if keyring is not None:
        return keyring
    configured = load_settings(ctx).auth_keyring_file
    if not configured:
        fail("no keyring: pass --keyring FILE or set EVENTCONFIG_AUTH_KEYRING_FILE", 2)
    return Path(configured)


@keys.command("new")
@click.argument("actor")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key, PEM, mode 0600 (default ACTOR.pem); never overwritten.")
@keyring_option
@click.pass_context
def new_cmd(ctx: click.Context, actor: str, key_file: Path | None, keyring: Path | None) -> None:
    """Make a key pair for ACTOR: the private key to a new file, the public key into the keyring (an
    actor's other keys stay, so this also rotates)."""
    if not actor.strip():
        fail("the actor name may not be empty", 2)
    path = _keyring(ctx, keyring)
    document = KeyringDocument.read(path, create=True)
    pem, public = new_key_pair()
    document.add(actor, public)
    key_file = key_file or Path(f"{actor}.pem")
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"the key file {key_file} already exists; remove it or choose another --key-file")
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    document.write()
    click.echo(f"{actor}\t{fingerprint(public)}\tprivate key {key_file}, public key added to {path}")
    click.echo(f"sign with: EVENTCONFIG_SIGNING_KEY_FILE={key_file} EVENTCONFIG_SIGNING_ACTOR={actor}")


@keys.command("list")
@keyring_option
@click.pass_context
def list_cmd(ctx: click.Context, keyring: Path | None) -> None:
    """One line per key: actor, fingerprint, groups (an actor whose keys are all revoked shows '-')."""
    for entry in KeyringDocument.read(_keyring(ctx, keyring)).entries():
        groups = ",".join(entry.groups) or "-"
        for key in entry.fingerprints or ("-",):
            click.echo(f"{entry.actor}\t{key}\t{groups}")


@keys.command("revoke")
@click.argument("actor")
@click.argument("key", required=False)
@keyring_option
@click.pass_context
def revoke_cmd(ctx: click.Context, actor: str, key: str | None, keyring: Path | None) -> None:
    """Remove KEY (a fingerprint from 'keys list', or the base64 public key) of ACTOR, or every key of
    ACTOR; its groups and delegates stay."""
    document = KeyringDocument.read(_keyring(ctx, keyring))
    removed = document.revoke(actor, key)
    document.write()
    for gone in removed:
        click.echo(f"revoked {actor}\t{gone}")
