"""Secure mode of the local broker: SASL/SCRAM-SHA-512 clients, TLS, the KRaft StandardAuthorizer, role users.

``eventconfig broker start --secure`` makes the broker refuse unauthenticated clients and everything
no ACL allows. It listens twice: ``SASL_PLAINTEXT`` on the broker's port and ``SASL_SSL`` on a second
one, whose certificate is signed by a throw-away CA made at the first start (``<run_dir>/tls/ca.pem``
is what clients trust). A super user administers the cluster (ACLs, and the broker's own inter-broker
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

import datetime
import ipaddress
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
TLS_PROTOCOL = "SASL_SSL"
MECHANISM = "SCRAM-SHA-512"
CREDENTIALS_FILE = "credentials.json"
CA_FILE = "tls/ca.pem"  # under the run dir: the CA clients of the TLS listener trust
_KEYSTORE_FILE = "tls/broker.pem"  # the broker's private key and certificate (PEM keystore)


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

    def environment(self, user: str, ca_file: Path | None = None) -> dict[str, str]:
        """The ``EVENTCONFIG_*`` variables that make any eventconfig process connect as ``user``; over
        TLS (to the TLS port) trusting ``ca_file`` when it is given."""
        protocol = {"EVENTCONFIG_SECURITY_PROTOCOL": TLS_PROTOCOL if ca_file else SECURITY_PROTOCOL}
        if ca_file:
            protocol["EVENTCONFIG_SSL_CAFILE"] = str(ca_file)
        return {**protocol, "EVENTCONFIG_SASL_MECHANISM": MECHANISM, "EVENTCONFIG_SASL_USERNAME": user,
                "EVENTCONFIG_SASL_PASSWORD": self.passwords[user]}

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

    def server_properties(self, port: int, tls_port: int, controller_port: int, run_dir: Path) -> str:
        """Properties appended to the plain template; a later key wins, so these replace its listeners.
        Makes the TLS certificates first if the run dir has none."""
        keystore = make_certificates(run_dir)
        admin = self.passwords[SUPER_USER]
        scram_login = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                       f'username="{SUPER_USER}" password="{admin}";')
        plain_login = (f'org.apache.kafka.common.security.plain.PlainLoginModule required '
                       f'username="{SUPER_USER}" password="{admin}" user_{SUPER_USER}="{admin}";')
        return "\n".join([
            "",
            "# --- secure mode (eventconfig.localbroker.secure) ---",
            f"listeners={SECURITY_PROTOCOL}://127.0.0.1:{port},{TLS_PROTOCOL}://127.0.0.1:{tls_port},"
            f"CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={SECURITY_PROTOCOL}://127.0.0.1:{port},{TLS_PROTOCOL}://127.0.0.1:{tls_port}",
            f"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,{SECURITY_PROTOCOL}:SASL_PLAINTEXT,"
            f"{TLS_PROTOCOL}:SASL_SSL",
            f"inter.broker.listener.name={SECURITY_PROTOCOL}",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.{SECURITY_PROTOCOL.lower()}.{MECHANISM.lower()}.sasl.jaas.config={scram_login}",
            f"listener.name.{TLS_PROTOCOL.lower()}.{MECHANISM.lower()}.sasl.jaas.config={scram_login}",
            f"listener.name.{TLS_PROTOCOL.lower()}.ssl.keystore.type=PEM",
            f"listener.name.{TLS_PROTOCOL.lower()}.ssl.keystore.location={keystore}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain_login}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{SUPER_USER}",
            "allow.everyone.if.no.acl.found=false",
            "",
        ])


def make_certificates(run_dir: Path) -> Path:
    """A throw-away CA (``tls/ca.pem``) and the broker's key and certificate for 127.0.0.1 and
    localhost signed by it (``tls/broker.pem``), made once per run dir; returns the broker's file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    keystore = run_dir / _KEYSTORE_FILE
    if keystore.exists():
        return keystore
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                    signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, broker_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eventconfig local broker CA")])
    ca_cert = certificate("eventconfig local broker CA", ca_key, ca_name, ca_key, ca=True)
    broker_cert = certificate("127.0.0.1", broker_key, ca_name, ca_key, ca=False)
    keystore.parent.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (run_dir / CA_FILE).write_bytes(ca_cert.public_bytes(pem))
    fd = os.open(keystore, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:  # the CA's key is not kept: nothing else is ever signed
        out.write(broker_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        out.write(broker_cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return keystore
