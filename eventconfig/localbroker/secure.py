"""Secure mode of the local broker: SASL/SCRAM-SHA-512 clients, the KRaft StandardAuthorizer, role users.

``eventconfig broker start --secure`` makes the broker refuse unauthenticated clients and everything
no ACL allows. A super user administers the cluster (ACLs, and the broker's own inter-broker
connections); one SCRAM user per ACL role (docs/operations.md "Access control") lets every process be
run, and tested, with its least privileges. The passwords are drawn at first start and kept in
``<run_dir>/credentials.json`` (mode 0600); the SCRAM credentials enter the cluster metadata when the
storage is formatted (``--add-scram``), so no unauthenticated window exists.

The controller listener speaks SASL PLAIN with a static JAAS user (KRaft controllers cannot use SCRAM:
the credentials live in the metadata the controller serves), so the loopback controller port is not an
anonymous super user either.

Example::

    creds = Credentials.load_or_create(run_dir)
    settings_env = creds.environment("client")    # EVENTCONFIG_SECURITY_PROTOCOL=SASL_PLAINTEXT ...
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPER_USER = "superuser"
# One user per role of eventconfig.kafka.acl_plan.ROLES, named like the role.
ROLE_USERS = ("service", "client", "viewer", "auditor", "admin")
SECURITY_PROTOCOL = "SASL_PLAINTEXT"
MECHANISM = "SCRAM-SHA-512"
CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    """The passwords of the super user and the role users of one secure local broker."""

    passwords: dict[str, str]

    @classmethod
    def load_or_create(cls, run_dir: Path) -> Credentials:
        """The run dir's credentials; drawn and written (0600) on first use, reused afterwards."""
        path = run_dir / CREDENTIALS_FILE
        if path.exists():
            return cls(json.loads(path.read_text())["passwords"])
        creds = cls({user: secrets.token_urlsafe(18) for user in (SUPER_USER, *ROLE_USERS)})
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"security_protocol": SECURITY_PROTOCOL, "sasl_mechanism": MECHANISM,
                       "passwords": creds.passwords}, out, indent=2)
        return creds

    @classmethod
    def load(cls, run_dir: Path) -> Credentials | None:
        path = run_dir / CREDENTIALS_FILE
        return cls(json.loads(path.read_text())["passwords"]) if path.exists() else None

    def environment(self, user: str) -> dict[str, str]:
        """The ``EVENTCONFIG_*`` variables that make any eventconfig process connect as ``user``."""
        return {"EVENTCONFIG_SECURITY_PROTOCOL": SECURITY_PROTOCOL, "EVENTCONFIG_SASL_MECHANISM": MECHANISM,
                "EVENTCONFIG_SASL_USERNAME": user, "EVENTCONFIG_SASL_PASSWORD": self.passwords[user]}

    def client_kwargs(self, user: str = SUPER_USER) -> dict[str, Any]:
        """aiokafka connection arguments (without bootstrap servers) for ``user``."""
        return {"security_protocol": SECURITY_PROTOCOL, "sasl_mechanism": MECHANISM,
                "sasl_plain_username": user, "sasl_plain_password": self.passwords[user]}

    def format_args(self) -> list[str]:
        """``kafka-storage format`` arguments that put every user's SCRAM credential into the metadata."""
        args: list[str] = []
        for user, password in self.passwords.items():
            args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
        return args

    def server_properties(self, port: int, controller_port: int) -> str:
        """Properties appended to the plain template; a later key wins, so these replace its listeners."""
        admin = self.passwords[SUPER_USER]
        scram_login = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                       f'username="{SUPER_USER}" password="{admin}";')
        plain_login = (f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                       f'username="{SUPER_USER}" password="{admin}" user_{SUPER_USER}="{admin}";')
        return "\n".join([
            "",
            "# --- secure mode (eventconfig.localbroker.secure) ---",
            f"listeners={SECURITY_PROTOCOL}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={SECURITY_PROTOCOL}://127.0.0.1:{port}",
            f"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,{SECURITY_PROTOCOL}:SASL_PLAINTEXT",
            f"inter.broker.listener.name={SECURITY_PROTOCOL}",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.{SECURITY_PROTOCOL.lower()}.{MECHANISM.lower()}.sasl.jaas.config={scram_login}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain_login}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{SUPER_USER}",
            "allow.everyone.if.no.acl.found=false",
            "",
        ])
