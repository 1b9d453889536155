"""OPC UA client code shared by the source and the browse command: connect, resolve nodes, browse.

Namespaces are always resolved from their URI on the server at hand (`nsu=...`), never from a
stored index, because a PLC may renumber its namespaces after a firmware update or restart.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from asyncua import Client, Node, ua
from asyncua.crypto import security_policies

from connectors.opcua.config import OpcUaSource

log = logging.getLogger(__name__)
MAX_DEPTH = 12
# the OPC UA policy names of the config (as in the policy URIs) and asyncua's classes for them
POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}


@dataclass(frozen=True)
class Target:
    """A variable to watch and how its values become points."""

    node: Node
    path: tuple[str, ...]  # browse names below Objects, the variable last
    tags: dict[str, str]
    field: str

    @cached_property  # read for every value taken: joined once
    def key(self) -> str:
        """Stable across server restarts (NodeIds and namespace indexes may change): the path."""
        return "/".join(self.path)


def make_client(config: OpcUaSource) -> Client:
    # the keep-alive probe (a server_state read) runs every `timeout` seconds and may take that
    # long: a 1 s probe dropped healthy sessions whenever the connector was busy for a second,
    # and the values changed while it re-subscribed were lost
    client = Client(config.endpoint, timeout=config.timeout, watchdog_intervall=config.timeout)
    client.name = client.description = "fabbrica connector"
    client.application_uri = config.application_uri  # must match the client certificate's URI
    if config.username is not None:
        client.set_user(config.username)
        client.set_password(config.password.get_secret_value() if config.password else "")
    return client


async def secure(client: Client, config: OpcUaSource, base: Path | None = None) -> None:
    """Set the client's security policy, mode and certificates (relative paths from `base`)."""
    if config.policy == "None":
        return
    assert config.certificate is not None and config.private_key is not None  # the config checks it
    server_certificate = config.server_certificate
    await client.set_security(
        POLICIES[config.policy],
        certificate=str(_path(config.certificate, base)),
        private_key=str(_path(config.private_key, base)),
        server_certificate=str(_path(server_certificate, base)) if server_certificate else None,
        mode=getattr(ua.MessageSecurityMode, config.message_mode),
    )


def _path(name: str, base: Path | None) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or base is None else base / path


async def parse_node_id(client: Client, text: str) -> ua.NodeId:
    """A NodeId from `nsu=URI;s=...`, `ns=2;i=...` or `i=...` (URI resolved on this server)."""
    text = text.strip()
    if text.startswith("nsu="):
        uri, _, rest = text[4:].partition(";")
        index = await client.get_namespace_index(uri)
        return ua.NodeId.from_string(f"ns={index};{rest}")
    return ua.NodeId.from_string(text)


def is_node_id(text: str) -> bool:
    text = text.strip()
    return text.startswith(("nsu=", "ns=")) or (len(text) > 2 and text[1] == "=" and text[0] in "isgb")


def split_pattern(pattern: str) -> list[str]:
    """`Objects/*/*/*` -> ['*', '*', '*'] (levels below Objects)."""
    levels = [level for level in pattern.strip().strip("/").split("/") if level]
    if levels and levels[0] == "Root":
        levels = levels[1:]
    if levels and levels[0] == "Objects":
        levels = levels[1:]
    return levels


async def _children(client: Client, parents: list[Node]) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references of many nodes in one Browse request each 500 nodes."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(parents), 500):
        chunk = parents[start : start + 500]
        for _, result in await client.browse_nodes(chunk):
            out.append(list(result.References or []) if result.StatusCode.is_good() else [])
    return out


async def browse_pattern(
    client: Client, pattern: str, include_standard: bool = False
) -> list[tuple[Node, tuple[str, ...]]]:
    """Variables whose browse path below Objects matches the pattern (`*` one level, `**` any)."""
    levels = split_pattern(pattern)
    if not levels:
        return []
    objects = client.nodes.objects
    # Each frontier item: (node, path so far, index of the next pattern level)
    frontier: list[tuple[Node, tuple[str, ...], int]] = [(objects, (), 0)]
    found: dict[ua.NodeId, tuple[Node, tuple[str, ...]]] = {}
    seen: set[tuple[ua.NodeId, int]] = set()
    depth = 0
    while frontier and depth <= MAX_DEPTH:
        depth += 1
        results = await _children(client, [node for node, _, _ in frontier])
        following: list[tuple[Node, tuple[str, ...], int]] = []
        for (_, path, index), references in zip(frontier, results, strict=True):
            level = levels[index]
            for reference in references:
                node_id = reference.NodeId
                if not include_standard and not path and node_id.NamespaceIndex == 0:
                    continue
                name = reference.BrowseName.Name
                child_path = (*path, name)
                variable = reference.NodeClass == ua.NodeClass.Variable
                node = client.get_node(node_id)
                if level == "**":
                    # '**' swallows this level and may go on swallowing, or hand over to the next.
                    if index + 1 < len(levels):
                        if fnmatch.fnmatchcase(name, levels[index + 1]):
                            if index + 2 == len(levels):
                                if variable:
                                    found.setdefault(node_id, (node, child_path))
                            else:
                                following.append((node, child_path, index + 2))
                    elif variable:
                        found.setdefault(node_id, (node, child_path))
                    if (node_id, index) not in seen:
                        seen.add((node_id, index))
                        following.append((node, child_path, index))
                elif fnmatch.fnmatchcase(name, level):
                    if index + 1 == len(levels):
                        if variable:
                            found.setdefault(node_id, (node, child_path))
                    else:
                        following.append((node, child_path, index + 1))
        frontier = following
    return list(found.values())


async def path_of(node: Node) -> tuple[str, ...]:
    """Browse names from below Objects down to the node."""
    names = [text.split(":", 1)[-1] for text in await node.get_path(as_string=True)]
    if names and names[0] == "Root":
        names = names[1:]
    if names and names[0] == "Objects":
        names = names[1:]
    return tuple(names)


def target_for(node: Node, path: tuple[str, ...], config: OpcUaSource) -> Target:
    parents = path[:-1]
    tags = dict(config.tags)
    for name, value in zip(config.path_tags, parents, strict=False):
        tags[name] = value
    field = ".".join((*parents[len(config.path_tags) :], path[-1])) if path else str(node.nodeid)
    return Target(node=node, path=path, tags=tags, field=field)


async def resolve(client: Client, config: OpcUaSource) -> tuple[list[Target], list[str]]:
    """The variables the config names, and a list of problems (bad node ids, empty patterns)."""
    targets: dict[ua.NodeId, Target] = {}
    problems: list[str] = []
    direct: list[tuple[str, Node]] = []
    for entry in config.nodes:
        if is_node_id(entry):
            try:
                direct.append((entry, client.get_node(await parse_node_id(client, entry))))
            except (ValueError, ua.UaError) as exc:
                problems.append(f"{entry}: {exc}")
            continue
        matches = await browse_pattern(client, entry, config.include_standard_nodes)
        if not matches:
            problems.append(f"{entry}: matched no variable")
        for node, path in matches:
            targets.setdefault(node.nodeid, target_for(node, path, config))
    if direct:
        classes = await client.read_attributes([node for _, node in direct], ua.AttributeIds.NodeClass)
        for (entry, node), value in zip(direct, classes, strict=True):
            if not value.StatusCode.is_good():
                problems.append(f"{entry}: {value.StatusCode.name}")
            elif value.Value.Value != ua.NodeClass.Variable:
                problems.append(f"{entry}: not a variable")
            else:
                targets.setdefault(node.nodeid, target_for(node, await path_of(node), config))
    return list(targets.values()), problems


async def browse_variables(client: Client, max_depth: int = 8) -> list[tuple[str, tuple[str, ...], str]]:
    """Every variable below Objects (namespace 0 left out): (nsu NodeId, browse path, data type)."""
    namespaces = await client.get_namespace_array()
    variables: list[tuple[str, tuple[str, ...], str]] = []
    frontier: list[tuple[Node, tuple[str, ...]]] = [(client.nodes.objects, ())]
    seen: set[ua.NodeId] = set()
    for _ in range(max_depth):
        if not frontier:
            break
        results = await _children(client, [node for node, _ in frontier])
        following: list[tuple[Node, tuple[str, ...]]] = []
        for (_, path), references in zip(frontier, results, strict=True):
            for reference in references:
                node_id = reference.NodeId
                if node_id.NamespaceIndex == 0 or node_id in seen:
                    continue
                seen.add(node_id)
                child_path = (*path, reference.BrowseName.Name)
                if reference.NodeClass == ua.NodeClass.Variable:
                    variables.append((_nsu(node_id, namespaces), child_path, ""))
                if reference.NodeClass in (ua.NodeClass.Object, ua.NodeClass.Variable):
                    following.append((client.get_node(node_id), child_path))
        frontier = following
    if variables:
        nodes = [client.get_node(await parse_node_id(client, node_id)) for node_id, _, _ in variables]
        types = await client.read_attributes(nodes, ua.AttributeIds.DataType)
        named = []
        for (node_id, path, _), value in zip(variables, types, strict=True):
            kind = value.Value.Value if value.StatusCode.is_good() else None
            type_name = (
                ua.ObjectIdNames.get(kind.Identifier, str(kind)) if isinstance(kind, ua.NodeId) else "?"
            )
            named.append((node_id, path, type_name))
        variables = named
    return variables


def _nsu(node_id: ua.NodeId, namespaces: list[str]) -> str:
    text = node_id.to_string()
    prefix = f"ns={node_id.NamespaceIndex};"
    if text.startswith(prefix) and node_id.NamespaceIndex < len(namespaces):
        return f"nsu={namespaces[node_id.NamespaceIndex]};{text[len(prefix) :]}"
    return text
