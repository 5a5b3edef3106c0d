"""Reading and creating Kafka ACLs (DescribeAcls, CreateAcls) through an aiokafka admin client.

aiokafka's admin client has no ACL methods, but its protocol module has the DescribeAcls and
CreateAcls messages; these are sent on the admin client's connection, so the ACL commands use the
same settings (SASL, SSL) as every other process. Version 1 of both is what Kafka 4 still accepts
(v0 was removed by KIP-896) and is enough: it carries the resource pattern type.

Example::

    async with admin_client(settings) as admin:
        created = await apply(admin, plan(settings, ["client"], "User:app"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request

from eventconfig.kafka.acl_plan import Acl, AclError

# Kafka's codes (org.apache.kafka.common.acl / resource).
RESOURCE_TYPES = {"ANY": 1, "TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5}
PATTERNS = {"ANY": 1, "MATCH": 2, "LITERAL": 3, "PREFIXED": 4}
OPERATIONS = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7, "DESCRIBE": 8,
              "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11, "IDEMPOTENT_WRITE": 12}
PERMISSIONS = {"ANY": 1, "DENY": 2, "ALLOW": 3}
_CLUSTER_AUTHORIZATION_FAILED = 31


class _CreateAcls(Request[CreateAclsRequest_v1]):
    """CreateAcls with any number of bindings (aiokafka's own request class carries one)."""

    API_KEY = 30

    def __init__(self, acls: Sequence[Acl]) -> None:
        self._creations = [(RESOURCE_TYPES[a.resource_type], a.resource_name, PATTERNS[a.pattern], a.principal,
                            a.host, OPERATIONS[a.operation], PERMISSIONS[a.permission]) for a in acls]

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


async def describe(admin: AIOKafkaAdminClient, principal: str) -> set[Acl]:
    """Every binding of ``principal`` on the cluster."""
    request = DescribeAclsRequest(resource_type=RESOURCE_TYPES["ANY"], resource_name=None,
                                  resource_pattern_type_filter=PATTERNS["ANY"], principal=principal,
                                  host=None, operation=OPERATIONS["ANY"],
                                  permission_type=PERMISSIONS["ANY"])
    response = await admin._send_request(request)  # aiokafka has no public ACL API (see module doc)
    _raise_for(response.error_code, response.error_message, "reading the ACLs")
    found: set[Acl] = set()
    for rtype, rname, pattern, bindings in response.resources:
        for acl_principal, host, operation, permission in bindings:
            found.add(Acl(_name(RESOURCE_TYPES, rtype), _name(PATTERNS, pattern), rname,
                          _name(OPERATIONS, operation), acl_principal, _name(PERMISSIONS, permission), host))
    return found


async def apply(admin: AIOKafkaAdminClient, wanted: Sequence[Acl], timeout: float = 30.0) -> list[Acl]:
    """Create the bindings of ``wanted`` that do not exist yet and return those created (idempotent).
    Returns once a broker enforces them: the controller commits new ACLs before brokers apply them."""
    missing = await _missing(admin, wanted)
    if not missing:
        return []
    response = await admin._send_request(_CreateAcls(missing))
    for acl, (code, message) in zip(missing, response.creation_responses):
        _raise_for(code, message, f"creating {acl.line()}")
    deadline = asyncio.get_running_loop().time() + timeout
    while still := await _missing(admin, missing):
        if asyncio.get_running_loop().time() > deadline:
            raise AclError(f"{len(still)} created ACLs are not in force after {timeout:g} s, e.g. {still[0].line()}")
        await asyncio.sleep(0.05)
    return missing


async def _missing(admin: AIOKafkaAdminClient, wanted: Sequence[Acl]) -> list[Acl]:
    existing: set[Acl] = set()
    for principal in sorted({a.principal for a in wanted}):
        existing |= await describe(admin, principal)
    return [a for a in wanted if a not in existing]


def _name(table: dict[str, int], code: int) -> str:
    return next((name for name, value in table.items() if value == code), str(code))


def _raise_for(code: int, message: str | None, doing: str) -> None:
    if code == 0:
        return
    if code == _CLUSTER_AUTHORIZATION_FAILED:
        raise AclError(f"{doing} was refused: managing ACLs needs DESCRIBE and ALTER on the cluster "
                       "(run it as a super user)")
    raise AclError(f"{doing} failed: {for_code(code).__name__}{f': {message}' if message else ''}")
