"""Explicit mapping: state variables named in the adapter settings, for servers without a model.

Each entry of ``nodes`` names one variable by node id (``node``) or by browse path
(``browse_path``) and maps its values to states (``states``). A value matches a key by its
integer, its boolean (``true``, ``false``) or its text, text also without regard to case. Values
that match no key get ``default``, or Unknown without it. A null value or a bad status is always
Unknown.

Node ids are ``ns=N;s=...`` or ``nsu=URI;s=...`` (also ``i=``, ``g=`` and ``b=``). Browse path
segments, separated by ``/``, are ``N:Name`` or ``nsu=URI;Name`` and start at the Root folder,
for example ``0:Objects/nsu=urn:plc;Press1/nsu=urn:plc;Status``. A name containing ``/`` cannot
be written in a browse path; use its node id instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.uaerrors import UaStatusCodeError, UaStringParsingError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.opcua.machinery import (
    CompanionModel,
    MachineNodes,
    ServerConfigurationError,
    content_text,
)
from kooperant.protocol import MachineState, check_identifier

STATE_NAMES: dict[str, MachineState] = {
    "not_available": MachineState.NOT_AVAILABLE,
    "out_of_service": MachineState.OUT_OF_SERVICE,
    "not_executing": MachineState.NOT_EXECUTING,
    "executing": MachineState.EXECUTING,
    "unknown": MachineState.UNKNOWN,
}
_ALLOWED = ", ".join(STATE_NAMES)

_NODE_ID = re.compile(r"(ns=\d+;)?[isgb]=.+", re.DOTALL)
_PATH_SEGMENT = re.compile(r"nsu=[^;]+;[^/]+|[^/]+")
_INDEXED_NAME = re.compile(r"(\d+):(.+)", re.DOTALL)

_LOGGER = logging.getLogger(__name__)


def _check_state_name(value: object, prefix: str = "") -> str:
    if not isinstance(value, str) or value not in STATE_NAMES:
        raise ValueError(f"{prefix}invalid state {value!r}; allowed states: {_ALLOWED}")
    return value


def state_key(value: object) -> str | None:
    """Return the ``states`` key that a value read from a variable, or written in YAML, matches."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return content_text(value)


# Namespace indexes are UInt16 on the wire.
MAX_NAMESPACE_INDEX = 65_535


@dataclass(frozen=True, slots=True)
class NodeReference:
    """A node id from the settings, with the namespace URI still to be resolved on the server."""

    namespace_uri: str | None
    node_id: ua.NodeId


def parse_node_reference(text: str) -> NodeReference:
    """Parse ``ns=N;...``, ``nsu=URI;...`` or a node id in namespace 0, or raise ValueError."""
    namespace_uri = None
    rest = text.strip()
    if rest.startswith("nsu="):
        namespace_uri, separator, rest = rest[4:].partition(";")
        if not separator or not namespace_uri:
            raise ValueError(
                f"invalid node id {text!r}: write nsu=URI;s=NAME, e.g. nsu=urn:plc;s=Press1.Status"
            )
        if rest.startswith("ns="):
            raise ValueError(f"invalid node id {text!r}: give nsu= or ns=, not both")
    if not _NODE_ID.fullmatch(rest):
        raise ValueError(
            f"invalid node id {text!r}: write ns=N;s=NAME, nsu=URI;s=NAME or ns=N;i=NUMBER, "
            "e.g. ns=2;s=Press1.Status"
        )
    try:
        parsed = ua.NodeId.from_string(rest)
    except (ValueError, UaStringParsingError) as error:
        # asyncua's message is a tuple repr, so the allowed forms are given instead.
        raise ValueError(
            f"invalid node id {text!r}: write ns=N;s=NAME, nsu=URI;s=NAME or ns=N;i=NUMBER with "
            "a whole NUMBER, e.g. ns=2;i=1001"
        ) from error
    if parsed.NamespaceIndex > MAX_NAMESPACE_INDEX:
        raise ValueError(
            f"invalid node id {text!r}: namespace index {parsed.NamespaceIndex} is above "
            f"{MAX_NAMESPACE_INDEX}, the largest OPC UA allows"
        )
    return NodeReference(namespace_uri, ua.NodeId(parsed.Identifier, parsed.NamespaceIndex))


@dataclass(frozen=True, slots=True)
class PathSegment:
    """One browse name of a browse path: a namespace index or URI, and the name."""

    namespace_uri: str | None
    namespace_index: int
    name: str


def parse_browse_path(text: str) -> tuple[PathSegment, ...]:
    """Parse ``0:Objects/2:Press1/nsu=urn:plc;Status``, or raise ValueError naming the segment."""
    segments = []
    for token in _PATH_SEGMENT.findall(text.strip().strip("/")):
        if token.startswith("nsu="):
            uri, _, name = token[4:].partition(";")
            segments.append(PathSegment(uri, 0, name))
            continue
        match = _INDEXED_NAME.fullmatch(token)
        if match is None:
            raise ValueError(
                f"invalid browse path {text!r}: segment {token!r} needs a namespace, as "
                "N:Name or nsu=URI;Name, e.g. 0:Objects/2:Press1/2:Status"
            )
        index = int(match.group(1))
        if index > MAX_NAMESPACE_INDEX:
            raise ValueError(
                f"invalid browse path {text!r}: namespace index {index} of segment {token!r} "
                f"is above {MAX_NAMESPACE_INDEX}, the largest OPC UA allows"
            )
        segments.append(PathSegment(None, index, match.group(2)))
    if not segments:
        raise ValueError(f"invalid browse path {text!r}: it names no node")
    return tuple(segments)


class NodeMapping(BaseModel):
    """One entry of ``nodes``: a machine whose state is one variable with value rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    resource: str = Field(description="Resource id of the machine in offers.")
    name: str | None = Field(None, description="Display name; the resource id without it.")
    node: str | None = Field(None, description="Node id of the state variable.")
    browse_path: str | None = Field(None, description="Browse path of the state variable.")
    states: dict[str, str] = Field(description="State name per variable value.")
    default: str | None = Field(None, description="State for values not listed in states.")

    @field_validator("resource")
    @classmethod
    def _check_resource(cls, resource: str) -> str:
        return check_identifier(resource, "resource")

    @field_validator("node")
    @classmethod
    def _check_node(cls, node: str | None) -> str | None:
        if node is not None:
            parse_node_reference(node)
        return node

    @field_validator("browse_path")
    @classmethod
    def _check_browse_path(cls, browse_path: str | None) -> str | None:
        if browse_path is not None:
            parse_browse_path(browse_path)
        return browse_path

    @field_validator("states", mode="before")
    @classmethod
    def _check_states(cls, states: Any) -> Any:
        if not isinstance(states, dict):
            return states
        checked: dict[str, str] = {}
        for value, state in states.items():
            key = state_key(value)
            if key is None or key.strip() == "":
                raise ValueError(f"empty value {value!r}; give a number, text or boolean")
            if key in checked:
                raise ValueError(f"value {value!r} is listed twice")
            checked[key] = _check_state_name(state, f"value {key!r}: ")
        if not checked:
            raise ValueError("no values; give at least one, e.g. {1: executing}")
        return checked

    @field_validator("default")
    @classmethod
    def _check_default(cls, default: str | None) -> str | None:
        return None if default is None else _check_state_name(default)

    @model_validator(mode="after")
    def _check_target(self) -> NodeMapping:
        if (self.node is None) == (self.browse_path is None):
            raise ValueError(
                f"nodes entry of resource {self.resource!r}: give either node or browse_path"
            )
        return self

    @property
    def source(self) -> str:
        """The node id or browse path as written, with its key, for messages."""
        if self.node is not None:
            return f"node {self.node!r}"
        return f"browse_path {self.browse_path!r}"

    def state_for(self, value: object) -> MachineState:
        """Return the state for a value read from the variable."""
        key = state_key(value)
        if key is None:
            return MachineState.UNKNOWN
        if key in self.states:
            return STATE_NAMES[self.states[key]]
        for listed, state in self.states.items():
            if listed.casefold() == key.casefold():
                return STATE_NAMES[state]
        return STATE_NAMES[self.default] if self.default is not None else MachineState.UNKNOWN


def _check_unique_resources(nodes: tuple[NodeMapping, ...]) -> tuple[NodeMapping, ...]:
    seen: set[str] = set()
    for entry in nodes:
        if entry.resource in seen:
            raise ValueError(f"resource {entry.resource!r} is mapped twice; give each its own")
        seen.add(entry.resource)
    return nodes


NodeMappings = Annotated[tuple[NodeMapping, ...], AfterValidator(_check_unique_resources)]


async def mapped_machines(
    client: Client, nodes: tuple[NodeMapping, ...], url: str
) -> list[MachineNodes]:
    """Resolve the entries of ``nodes`` on the server and return their machines.

    An entry the server lacks is logged and left out, so the other entries still deliver; it is
    tried again at the next connection. Raises ``ServerConfigurationError`` naming every problem
    when no entry can be resolved.
    """
    if not nodes:
        return []
    namespaces = await client.get_namespace_array()
    machines = []
    problems = []
    for entry in nodes:
        try:
            variable = await _resolve(client, namespaces, entry, url)
        except ServerConfigurationError as error:
            problems.append(str(error))
            continue
        machines.append(
            MachineNodes(
                browse_name=entry.resource,
                display_name=entry.name or entry.resource,
                identification={},
                model=CompanionModel.MAPPING,
                variables={"value": variable},
                resource=entry.resource,
                rules=entry,
            )
        )
    if problems and not machines:
        raise ServerConfigurationError("; ".join(problems))
    for problem in problems:
        _LOGGER.error("%s; this resource is left out until the adapter connects again", problem)
    return machines


async def _resolve(client: Client, namespaces: list[str], entry: NodeMapping, url: str) -> Node:
    where = f"resource {entry.resource!r} (nodes in the adapter settings)"
    if entry.node is not None:
        reference = parse_node_reference(entry.node)
        node_id = reference.node_id
        if reference.namespace_uri is not None:
            index = _namespace_index(namespaces, reference.namespace_uri, where, url)
            node_id = ua.NodeId(node_id.Identifier, ua.Int16(index))
        node = client.get_node(node_id)
        try:
            node_class = await node.read_node_class()
        except UaStatusCodeError as error:
            raise ServerConfigurationError(
                f"OPC UA server {url} has no {entry.source} (there {node_id.to_string()}) of "
                f"{where}: {error}; check the node id with an OPC UA browser"
            ) from error
    else:
        assert entry.browse_path is not None
        path = [
            ua.QualifiedName(
                segment.name,
                ua.Int16(
                    segment.namespace_index
                    if segment.namespace_uri is None
                    else _namespace_index(namespaces, segment.namespace_uri, where, url)
                ),
            )
            for segment in parse_browse_path(entry.browse_path)
        ]
        try:
            node = await client.nodes.root.get_child(path)
            node_class = await node.read_node_class()
        except UaStatusCodeError as error:
            raise ServerConfigurationError(
                f"OPC UA server {url} has no node at {entry.source} of {where}: {error}; check "
                "each segment's namespace and browse name with an OPC UA browser"
            ) from error

    if node_class != ua.NodeClass.Variable:
        raise ServerConfigurationError(
            f"OPC UA server {url}: {entry.source} of {where} is a node of class "
            f"{node_class.name}, not a variable; name the variable that holds the state"
        )
    return node


def _namespace_index(namespaces: list[str], uri: str, where: str, url: str) -> int:
    if uri not in namespaces:
        raise ServerConfigurationError(
            f"OPC UA server {url} has no namespace {uri!r}, used by {where}; "
            f"its namespaces: {', '.join(namespaces)}"
        )
    return namespaces.index(uri)
