"""Read an ONNX model's graph (nodes, attributes, constant tensors) without the ``onnx`` package.

An ``.onnx`` file is one protobuf ``ModelProto`` message (schema: onnx/onnx.proto). Reading the few messages and
fields a converted CNN needs takes a small wire-format walker (:func:`_fields`), so a zero-shot member stored as
ONNX loads with numpy alone: ``onnx`` (and its ``protobuf`` pin) stay an optional extra for ``emovid export``.
The tests check this reader against ``onnx.load`` on the same files.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovid.models.weights import PathLike, WeightsUnavailableError

# TensorProto.DataType -> numpy dtype, for the types a quantised or float CNN stores.
_DTYPES: dict[int, type] = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
                            10: np.float16, 11: np.float64}
AttributeValue = int | float | str | tuple[int, ...] | tuple[float, ...]


@dataclass(frozen=True)
class OnnxNode:
    """One node: op type and domain ("" for ONNX's own ops), input and output tensor names (an empty name is an
    omitted optional input) and attributes."""

    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, AttributeValue]
    domain: str = ""


@dataclass(frozen=True)
class OnnxGraph:
    """A model's main graph: nodes in the file's (topological) order, constants by name, input/output shapes."""

    nodes: tuple[OnnxNode, ...]
    initializers: dict[str, np.ndarray]
    inputs: dict[str, tuple[int, ...]]  # graph inputs that are not initializers; symbolic dimensions are -1
    outputs: dict[str, tuple[int, ...]]
    opset: int  # the default domain's version

    def producer(self) -> dict[str, OnnxNode]:
        """Which node computes each tensor."""
        return {out: node for node in self.nodes for out in node.outputs}

    def consumers(self) -> dict[str, list[OnnxNode]]:
        """Which nodes read each tensor."""
        readers: dict[str, list[OnnxNode]] = {}
        for node in self.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        return readers


def read_onnx(path: PathLike) -> OnnxGraph:
    """Parse an ``.onnx`` file's graph.

    Raises:
        WeightsUnavailableError: the file is missing, not an ONNX model, truncated, or keeps its tensors in
            external files; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"ONNX file {path} does not exist")
    buf = path.read_bytes()
    try:
        return _parse_model(buf)
    except (struct.error, ValueError, IndexError, KeyError, UnicodeDecodeError) as exc:
        raise WeightsUnavailableError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------------------------------------------------------
# Protobuf wire format: each field is a varint key (number << 3 | wire type) then its value.
# ---------------------------------------------------------------------------------------------------------------

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"varint longer than 10 bytes at byte {pos}")


def _signed(value: int) -> int:
    """A varint read as int64 (negative numbers are stored as their 64-bit two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a message: an int for varint and fixed fields, bytes for the others."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _BYTES:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError(f"field {number} runs past the end of its message")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == _FIXED32:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == _FIXED64:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire} for field {number}")
        yield number, wire, value


def _packed_varints(value: int | bytes) -> list[int]:
    """A repeated integer field's entries: packed (bytes of varints) or one unpacked entry."""
    if isinstance(value, int):
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        number, pos = _varint(value, pos)
        out.append(_signed(number))
    return out


def _packed_floats(value: int | bytes) -> list[float]:
    """A repeated float field's entries: packed (bytes) or one unpacked fixed32 entry."""
    if isinstance(value, int):
        return [struct.unpack("<f", struct.pack("<I", value))[0]]
    return list(struct.unpack(f"<{len(value) // 4}f", value))


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ValueError("expected a string field")
    return value.decode("utf-8")


def _message(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("expected a message field")
    return value


# ---------------------------------------------------------------------------------------------------------------
# The ONNX messages.
# ---------------------------------------------------------------------------------------------------------------


def _parse_model(buf: bytes) -> OnnxGraph:
    graph: bytes | None = None
    opset = 1
    for number, _, value in _fields(buf):
        if number == 7:  # ModelProto.graph
            graph = _message(value)
        elif number == 8:  # ModelProto.opset_import: OperatorSetIdProto (domain = 1, version = 2)
            entry = {n: v for n, _, v in _fields(_message(value))}
            if not entry.get(1):  # the default domain is "" (absent)
                opset = int(entry.get(2, 1))
    if graph is None:
        raise ValueError("no graph (not an ONNX ModelProto)")
    return _parse_graph(graph, opset)


def _parse_graph(buf: bytes, opset: int) -> OnnxGraph:
    nodes, initializers = [], {}
    inputs: dict[str, tuple[int, ...]] = {}
    outputs: dict[str, tuple[int, ...]] = {}
    for number, _, value in _fields(buf):
        if number == 1:  # GraphProto.node
            nodes.append(_parse_node(_message(value)))
        elif number == 5:  # GraphProto.initializer
            name, array = _parse_tensor(_message(value))
            initializers[name] = array
        elif number == 11:  # GraphProto.input
            name, shape = _parse_value_info(_message(value))
            inputs[name] = shape
        elif number == 12:  # GraphProto.output
            name, shape = _parse_value_info(_message(value))
            outputs[name] = shape
        elif number == 15:  # GraphProto.sparse_initializer
            raise ValueError("sparse initializers are not supported")
    inputs = {name: shape for name, shape in inputs.items() if name not in initializers}  # IR < 4 lists both
    return OnnxGraph(tuple(nodes), initializers, inputs, outputs, opset)


def _parse_node(buf: bytes) -> OnnxNode:
    inputs, outputs, attributes, op, domain = [], [], {}, "", ""
    for number, _, value in _fields(buf):
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 4:
            op = _text(value)
        elif number == 5:
            name, attribute = _parse_attribute(_message(value))
            attributes[name] = attribute
        elif number == 7:
            domain = "" if _text(value) == "ai.onnx" else _text(value)
    return OnnxNode(op, tuple(inputs), tuple(outputs), attributes, domain)


def _parse_attribute(buf: bytes) -> tuple[str, AttributeValue]:
    """An attribute's name and its value (int, float, string, ints or floats); tensors and graphs are refused."""
    name = ""
    scalar: AttributeValue | None = None
    ints: list[int] = []
    floats: list[float] = []
    for number, _, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2:  # f (fixed32)
            scalar = _packed_floats(value)[0]
        elif number == 3:  # i
            scalar = _packed_varints(value)[0]
        elif number == 4:  # s
            scalar = _text(value)
        elif number == 7:  # floats
            floats.extend(_packed_floats(value))
        elif number == 8:  # ints
            ints.extend(_packed_varints(value))
        elif number in (5, 6, 9, 10, 11):
            raise ValueError(f"attribute {name or '?'} holds a string list, tensor or graph (not supported)")
    if scalar is not None:
        return name, scalar
    return name, tuple(floats) if floats else tuple(ints)


def _parse_tensor(buf: bytes) -> tuple[str, np.ndarray]:
    """A TensorProto's name and contents (raw_data, or the typed repeated field for small tensors)."""
    dims: list[int] = []
    name, data_type, raw = "", 0, b""
    typed: list[int | float] = []
    for number, _, value in _fields(buf):
        if number == 1:
            dims.extend(_packed_varints(value))
        elif number == 2:
            data_type = int(value)
        elif number == 4:  # float_data
            typed.extend(_packed_floats(value))
        elif number in (5, 7):  # int32_data (also every 8- and 16-bit type), int64_data
            typed.extend(_packed_varints(value))
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = _message(value)
        elif number == 10:  # double_data
            raw_doubles = _message(value) if isinstance(value, bytes) else struct.pack("<Q", value)
            typed.extend(struct.unpack(f"<{len(raw_doubles) // 8}d", raw_doubles))
        elif number == 14 and value == 1:  # data_location EXTERNAL
            raise ValueError(f"tensor {name or '?'} keeps its data in an external file (not supported)")
    if data_type not in _DTYPES:
        raise ValueError(f"tensor {name}: unsupported data type {data_type}")
    dtype = np.dtype(_DTYPES[data_type]).newbyteorder("<")
    count = int(np.prod(dims)) if dims else 1
    if raw:
        array = np.frombuffer(raw, dtype=dtype)
    elif data_type == 10:  # float16 values travel as their bit patterns in int32_data
        array = np.array(typed, dtype=np.uint16).view(np.float16)
    else:
        array = np.array(typed).astype(dtype)
    if array.size != count:
        raise ValueError(f"tensor {name}: {array.size} values for shape {tuple(dims)}")
    return name, array.astype(dtype.newbyteorder("="), copy=False).reshape(dims)


def _parse_value_info(buf: bytes) -> tuple[str, tuple[int, ...]]:
    """A ValueInfoProto's name and tensor shape (-1 for a symbolic or unknown dimension)."""
    name, shape = "", tuple[int, ...]()
    for number, _, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2:  # TypeProto.tensor_type (1) -> TypeProto.Tensor.shape (2) -> dims (1)
            for n, _, tensor_type in _fields(_message(value)):
                if n != 1:
                    continue
                for m, _, shape_proto in _fields(_message(tensor_type)):
                    if m == 2:
                        shape = tuple(_dimension(_message(d)) for k, _, d in _fields(_message(shape_proto)) if k == 1)
    return name, shape


def _dimension(buf: bytes) -> int:
    for number, _, value in _fields(buf):
        if number == 1:
            return _signed(int(value))
    return -1
