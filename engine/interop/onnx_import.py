"""ONNX import through the ``onnx`` package: ``LSTM``/``GRU`` nodes with their initializers, a
``Gather`` embedding before them and a ``MatMul`` (+ ``Add``) or ``Gemm`` head after them, with
an optional ``Softmax`` or ``Tanh``.

The graph is followed along its data path, not read in node order: from the first recurrent
node's input ``X`` back to the graph input, from each recurrent node to the next, and from the
last one's ``Y`` (or ``Y_h``) forward to the output. Shape plumbing off that path (``Shape``,
``Gather`` of a shape, ``Concat``, ``Expand``, ... that exporters emit for initial states)
carries no weights and is passed over. On the path, only ``Gather`` (embedding or one-hot
table), ``Cast``, ``Div`` by a constant (scaled index), ``Unsqueeze``/``Squeeze`` with
constant axes, ``Transpose``, ``Identity``, ``Dropout``, a ``Reshape`` after a recurrent node
that only drops size-one axes (``_reshaped``: ``torch.onnx.export``'s default exporter writes
one for the direction axis), the recurrent nodes and the head
(``MatMul``/``Gemm``, ``Add`` of a constant, ``Softmax`` over the outputs, ``Tanh``) are
understood; any other node there is refused, naming it.

Axes. Every tensor on the path carries a label per axis: batch, time, features, the recurrent
node's direction axis, or an axis of the graph input still unknown. A recurrent node states its
input arrangement with ``layout`` (0, the default: ``X [seq, batch, feature]``, ``Y [seq, dirs,
batch, hidden]``; 1: ``X [batch, seq, feature]``, ``Y [batch, seq, dirs, hidden]``; ONNX
operator specification of ``LSTM``/``GRU``, opset 14), which fixes which graph-input axis is the
batch and which the time; ``Transpose`` nodes on the way permute the labels. So a graph exported
from ``nn.LSTM(batch_first=False)`` (input ``[T, B]``) and one from ``batch_first=True``
(input ``[B, T]``, a ``Transpose`` before the node) are both fed and compared correctly. An
arrangement that cannot be established (any other ``Reshape``, ``Squeeze`` without axes,
the time or batch axis landing on the features, a ``layout`` other than 0/1) is refused in one
line naming the node and attribute.

Per recurrent node the gate blocks are reordered (LSTM i, o, f, c; GRU z, r, h) and ``B`` is
split into its input and recurrent halves (``layout.from_onnx``). Refused, one line naming the
node and attribute: ``direction`` other than forward, non-default ``activations``, ``clip``,
``input_forget``, peepholes ``P``, ``sequence_lens``, non-zero constant initial states, and GRU
``linear_before_reset=0`` (the candidate's recurrent term reset before the product, Keras
``reset_after=False``). A ``Gather`` from an identity matrix is a one-hot input; ``Cast`` +
``Div`` by a constant (lstmviz's own export) is a scaled index.

Several recurrent stacks (recurrent nodes not fed by one another, e.g. two branches) are
``AmbiguousModules``: ``prefixes`` (``--layer-prefix``) choose one by a node name or the
prefix of a node name or of its ``W``/``R``/``B`` initializer names; the parity check then
runs that stack's path only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import InteropError, Loaded, Parity, Recognised, choose_stack, from_onnx, logits_to_probabilities

PLUMBING = {"Shape", "Squeeze", "Unsqueeze", "Transpose", "Reshape", "Concat", "Constant", "ConstantOfShape",
            "Expand", "Slice", "Cast", "Identity", "Dropout", "Flatten", "Gather"}
RECURRENT_OPS = ("LSTM", "GRU")
PASS_THROUGH = ("Identity", "Dropout", "Cast")  # same axes in and out; on the data input 0
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
BATCH, TIME, FEATURES, HIDDEN, OUTPUTS, DIRECTIONS, ONE = "batch", "time", "features", "hidden", "outputs", "dirs", "1"
SIZE_ONE = (DIRECTIONS, ONE)


def read_onnx(source: str):
    """The ``ModelProto`` at ``source``; ``InteropError`` when onnx is missing or the file is bad."""
    try:
        import onnx
    except ImportError:
        raise InteropError(f"{source}: reading ONNX needs the 'onnx' package (pip install 'lstmviz[import]')") from None
    try:
        proto = onnx.load(source)
    except Exception as e:  # protobuf DecodeError, ValueError, OSError for bad or truncated files
        raise InteropError(f"{source}: not a readable ONNX model ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not proto.graph.node:
        raise InteropError(f"{source}: not a readable ONNX model (the graph has no nodes)")
    return proto


def load(source: str, prefixes=()) -> Loaded:
    """Read and recognise ``source`` (``prefixes`` choose among several recurrent stacks);
    parity runs onnxruntime when installed."""
    proto = read_onnx(source)
    found, path = recognise(proto, source, prefixes)

    def check(model, rng) -> Parity:
        return parity(proto, path, found, model, rng)

    return Loaded(found, check)


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _label(node) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


@dataclass
class DataPath:
    """The chosen data path: the graph input's name and axis roles (``input_axes``, e.g.
    ``["time", "batch"]``), the recurrent nodes in stack order, the tensor that ends the path
    and its axis roles (``output_axes``, e.g. ``["batch", "time", "outputs"]``)."""

    input_name: str
    input_axes: list
    recurrent: list
    output_name: str
    output_axes: list
    input_dims: list = field(default_factory=list)
    ends_in_softmax: bool = False


class Graph:
    """Producers, consumers and constants of an ONNX graph, for walking its data path."""

    def __init__(self, proto, source: str):
        from onnx import numpy_helper

        graph = proto.graph
        self.graph, self.source = graph, source
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.consumers = {}
        for node in graph.node:
            for name in node.input:
                if name and node.op_type != "Shape":
                    self.consumers.setdefault(name, []).append(node)
        self.inputs = {i.name: i for i in graph.input if i.name not in self.consts}
        self._shape_only = {}  # a node's outputs -> computes_shape(node)
        self.outputs = [o.name for o in graph.output]

    def fail(self, node, what: str):
        return InteropError(f"{self.source}: {_label(node)}: {what}")

    def data_input(self, node) -> str:
        """The input of ``node`` that carries the sequence (not a constant)."""
        if node.op_type == "Gather":
            return node.input[1]
        if node.op_type in ("Add", "Mul", "Div", "Sub") and node.input[0] in self.consts:
            return node.input[1]
        return node.input[0]

    def back_to_source(self, start: str, before) -> tuple:
        """Walk back from tensor ``start`` (the ``X`` of recurrent node ``before``) over the
        nodes ``_axes`` understands: ``(nodes in data order, the recurrent node or graph input
        name where the walk ends)``."""
        nodes, name = [], start
        while name not in self.inputs:
            node = self.producer.get(name)
            if node is None:
                raise InteropError(f"{self.source}: {_label(before)}: its input {start!r} does not come from the "
                                   "graph input")
            if node.op_type in RECURRENT_OPS:
                if name != node.output[0]:
                    raise self.fail(before, f"reads {name!r}, the final state of {_label(node)}, not its sequence Y")
                return nodes[::-1], node
            known = node.op_type in PASS_THROUGH + ("Gather", "Div", "Unsqueeze", "Squeeze", "Transpose") or \
                (node.op_type == "Reshape" and self.after_recurrent(node))
            if not known:
                where = "between or after the recurrent layers" if self.after_recurrent(node) else \
                    "before the recurrent layers"
                raise InteropError(f"{self.source}: {_label(node)} {where} is not supported; only LSTM/GRU, a Gather "
                                   "embedding and a MatMul/Gemm head can be stepped exactly")
            nodes.append(node)
            name = self.data_input(node)
        return nodes[::-1], name

    def state_inputs(self, recurrent: list) -> list:
        """The graph inputs other than the data input that feed the ``initial_h``/``initial_c``
        of the ``recurrent`` nodes (a stack, first node first), directly or through other nodes
        (``torch.onnx.export`` of ``forward(ids, h0, c0)`` slices each layer's state out of one
        input), in the order found; a ``Shape`` node's input is not followed (no value flows)."""
        found, seen = [], set()
        todo = [i for node in recurrent for i in list(node.input)[5:7] if i]
        sequence = self.back_to_source(recurrent[0].input[0], recurrent[0])[1]  # the data input: never a state
        while todo:
            name = todo.pop(0)
            if name in seen or name == sequence:
                continue
            seen.add(name)
            if name in self.inputs:
                found.append(name)
            elif name in self.producer and self.producer[name].op_type != "Shape":  # a shape is no state's value
                todo += [i for i in self.producer[name].input if i]
        return found

    def computes_shape(self, node) -> bool:
        """True when ``node`` computes on tensor shapes only: each of its inputs is a constant,
        a ``Shape`` node's output, or the output of a node that computes shapes (each node
        decided once, ``_shape_only``)."""
        key = tuple(node.output)  # a node's outputs name it (each tensor has one producer)
        if key not in self._shape_only:
            producers = [self.producer.get(i) for i in node.input if i and i not in self.consts]
            self._shape_only[key] = node.op_type == "Shape" or all(
                p is not None and self.computes_shape(p) for p in producers)
        return self._shape_only[key]

    def after_recurrent(self, node) -> bool:
        """True when a recurrent node is among ``node``'s ancestors."""
        seen, todo = set(), [i for i in node.input if i]
        while todo:
            name = todo.pop()
            producer = self.producer.get(name)
            if producer is None or name in seen:
                continue
            seen.add(name)
            if producer.op_type in RECURRENT_OPS:
                return True
            todo += [i for i in producer.input if i]
        return False

    def forward(self, last, stop_at_unknown: bool) -> tuple:
        """From the last recurrent node's ``Y`` (or ``Y_h`` when only that is read) forward over
        the head: ``(nodes in order, the output of the recurrent node where the walk starts)``.
        An unknown node ends the walk when ``stop_at_unknown`` (a stack chosen inside a larger
        graph), else it is refused."""
        outs = list(last.output) + ["", ""]
        start = outs[0]
        if not (self.consumers.get(outs[0]) or outs[0] in self.outputs) and self.consumers.get(outs[1]):
            start = outs[1]
        nodes, name, head_seen = [], start, False
        while True:
            readers = self.consumers.get(name, [])
            if not readers:
                return nodes, start
            if len(readers) > 1:
                if stop_at_unknown:
                    return nodes, start
                raise InteropError(f"{self.source}: {name!r} is read by {len(readers)} nodes "
                                   f"({', '.join(_label(n) for n in readers)}); only a chain can be stepped")
            node = readers[0]
            known = node.op_type in PASS_THROUGH + ("Squeeze", "Unsqueeze", "Reshape", "Transpose", "MatMul", "Gemm",
                                                    "Add", "Softmax", "Tanh")
            if not known or node.op_type in RECURRENT_OPS:
                if stop_at_unknown:
                    return nodes, start
                where = "after the output layer" if head_seen else "between or after the recurrent layers"
                raise InteropError(f"{self.source}: {_label(node)} {where} is not supported; only LSTM/GRU, a Gather "
                                   "embedding and a MatMul/Gemm head can be stepped exactly")
            head_seen = head_seen or node.op_type in ("MatMul", "Gemm")
            nodes.append(node)
            name = node.output[0]


def stacks(g: Graph) -> list:
    """The recurrent stacks of the graph: lists of recurrent nodes, each fed by the one before."""
    recurrent = [n for n in g.graph.node if n.op_type in RECURRENT_OPS]
    fed_by = {}
    for node in recurrent:
        _, source = g.back_to_source(node.input[0], node)
        if not isinstance(source, str):
            if id(source) in fed_by.values():
                raise g.fail(source, "its output feeds two recurrent nodes; only one chain can be stepped")
            fed_by[id(node)] = id(source)
    by_id = {id(n): n for n in recurrent}
    feeds = {v: k for k, v in fed_by.items()}
    out = []
    for node in recurrent:
        if id(node) in fed_by:
            continue
        stack = [node]
        while id(stack[-1]) in feeds:
            stack.append(by_id[feeds[id(stack[-1])]])
        out.append(stack)
    return out


def _name(node) -> str:
    return node.name or node.output[0]


def recognise(proto, source: str, prefixes=()) -> tuple:
    """``(Recognised, DataPath)`` for an ONNX model (module docstring)."""
    g = Graph(proto, source)
    graph = proto.graph
    found_stacks = stacks(g)
    if not found_stacks:
        raise InteropError(f"{source}: no ONNX LSTM or GRU node found")
    if len(found_stacks) == 1:
        for node in graph.node:
            if node.op_type not in PLUMBING | {"MatMul", "Gemm", "Add", "Softmax", "Tanh", "Div", *RECURRENT_OPS} \
                    and not g.computes_shape(node):
                where = "between or after the recurrent layers" if g.after_recurrent(node) else \
                    "before the recurrent layers"
                raise InteropError(f"{source}: {_label(node)} {where} is not supported; only LSTM/GRU, a Gather "
                                   "embedding and a MatMul/Gemm head can be stepped exactly")
    stack = found_stacks[choose_stack(
        [[name for n in stack for name in (_name(n), *[i for i in list(n.input)[1:4] if i])] for stack in found_stacks],
        [_name(stack[0]) for stack in found_stacks], prefixes, source,
        "LSTM/GRU nodes not fed by one another, named by their first node; a node name or a prefix of node or "
        "initializer names chooses")]
    cells = {n.op_type for n in stack}
    if len(cells) > 1:
        raise g.fail(stack[1], "mixed LSTM and GRU layers are not supported")
    found = Recognised(cell=stack[0].op_type.lower(), layers=[_recurrent_layer(n, g) for n in stack])
    found.names = {"recurrent": [_name(n) for n in stack],
                   "initial states from graph inputs, taken as zeros": g.state_inputs(stack)}
    before, graph_input = g.back_to_source(stack[0].input[0], stack[0])
    after, start = g.forward(stack[-1], stop_at_unknown=len(found_stacks) > 1)
    path = _axes(g, graph_input, before, stack, after, start)
    _recognise_ends(g, found, before, after)
    return found, path


def _recognise_ends(g: Graph, found: Recognised, before: list, after: list) -> None:
    """The embedding / one-hot / scaled index before the stack and the head after it."""
    embed = onehot_size = scale = None
    for node in before:
        if node.op_type == "Gather":
            if node.input[0] not in g.consts or g.consts[node.input[0]].ndim != 2:
                raise g.fail(node, "a lookup whose table is not a constant 2-D initializer is not supported")
            if embed is not None or onehot_size is not None:
                raise g.fail(node, "a second table lookup is not supported")
            table = g.consts[node.input[0]]  # (V, E)
            if table.shape[0] == table.shape[1] and np.array_equal(table, np.eye(table.shape[0])):
                onehot_size = table.shape[0]
            else:
                embed = table.copy()  # (V, E)
        elif node.op_type == "Div":
            divisor = node.input[1]
            if divisor not in g.consts or g.consts[divisor].size != 1:
                raise g.fail(node, "a division by something other than one constant is not supported")
            scale = float(g.consts[divisor].reshape(()))
    head_W = head_b = activation = None
    for node in after:
        if node.op_type in ("MatMul", "Gemm"):
            if head_W is not None:
                raise g.fail(node, "a second output layer is not supported")
            head_W, head_b = _head(node, g)
        elif node.op_type == "Add":
            bias = next((i for i in node.input if i in g.consts), None)
            if head_W is None or head_b is not None or bias is None:
                raise g.fail(node, "only the output layer's bias can be added")
            head_b = np.asarray(g.consts[bias]).reshape(-1)  # (O,)
        elif node.op_type in ("Softmax", "Tanh"):
            if head_W is None or activation is not None:
                raise g.fail(node, "only one activation after the output layer is supported")
            activation = "softmax" if node.op_type == "Softmax" else "tanh"
    found.embed = embed
    found.scaled_index = scale is not None
    found.index_scale = scale
    if head_W is not None:
        if head_b is None:
            head_b = np.zeros(head_W.shape[1], head_W.dtype)  # (O,)
        found.head = (head_W, head_b)
        found.head_activation = activation  # None: layout.build_model decides (a softmax over tokens)


def _const_axes(node, g: Graph) -> list | None:
    """The ``axes`` of a Squeeze/Unsqueeze (input 1 from opset 13, else the attribute); None if absent."""
    if len(node.input) > 1 and node.input[1]:
        if node.input[1] not in g.consts:
            raise g.fail(node, "axes that are not a constant: cannot establish the batch and time axes")
        return [int(a) for a in np.asarray(g.consts[node.input[1]]).reshape(-1)]
    axes = _attrs(node).get("axes")
    return None if axes is None else [int(a) for a in axes]


SHAPE_SAME_VALUES = ("Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten")  # on a 1-D shape vector


def _shape_entries(g: Graph, name: str, seen: dict, size) -> list | None:
    """The value of the 1-D shape tensor ``name``, entry by entry: an int, or the label of the
    axis whose length it is when the graph leaves that length open (``seen``: tensor -> axis
    labels along the data path; ``size``: an axis's stated length or None); None when it is
    neither a constant nor computed by ``Shape``, ``Slice``, ``Gather``, ``Concat``, ``Mul`` (a
    product with a length of 1) and the ops of ``SHAPE_SAME_VALUES``."""
    if name in g.consts:
        return [int(v) for v in np.asarray(g.consts[name]).reshape(-1)]  # (n,) a constant shape vector
    node = g.producer.get(name)
    if node is None:
        return None
    op, args = node.op_type, [i for i in node.input if i]
    if op == "Shape":
        if args[0] not in seen:
            return None
        entries = [size(label) or label for label in seen[args[0]]]
        attrs = _attrs(node)
        return entries[attrs.get("start", 0) : attrs.get("end", len(entries))]
    values = [_shape_entries(g, a, seen, size) for a in args]
    if not values or any(v is None for v in values):
        return None
    if op in SHAPE_SAME_VALUES:
        return values[0]
    if op == "Concat":
        return [v for value in values for v in value]
    if op == "Gather" and all(isinstance(v, int) for v in values[1]) and not _attrs(node).get("axis", 0):
        return [values[0][k] for k in values[1]]
    if op == "Slice" and all(isinstance(v, int) for value in values[1:] for v in value) and \
            all(a == 0 for a in (values[3] if len(values) > 3 else [0])):
        step = values[4][0] if len(values) > 4 else 1
        return values[0][slice(values[1][0], values[2][0], step)]
    if op == "Mul" and len(values) == 2 and len(values[0]) == len(values[1]):
        return [a * b if isinstance(a, int) and isinstance(b, int) else b if a == 1 else a if b == 1 else None
                for a, b in zip(*values)]
    return None


def _reshaped(node, g: Graph, labels: list, resolve, size, seen: dict) -> list:
    """The axis labels after a ``Reshape`` (ONNX operator specification, opset 14) that drops
    size-one axes (the recurrent node's direction axis, an axis of size 1 added on the path)
    and keeps every other axis as it is: what ``torch.onnx.export``'s default exporter emits
    in place of a ``Squeeze``. Its ``shape`` (``_shape_entries``: a constant, or computed from
    the data's dimensions) must give, axis for axis, the kept axis's stated length (``size``)
    or the axis itself, 0 copying the same axis (``allowzero=0``) or one -1; any other
    reshape raises ``InteropError`` naming the node."""
    target = _shape_entries(g, node.input[1] if len(node.input) > 1 else "", seen, size)
    if target is None:
        raise g.fail(node, "a shape lstmviz cannot work out (neither a constant nor computed from the data's "
                           "dimensions by Shape, Slice, Gather, Concat and Mul): cannot establish the batch and "
                           "time axes")
    kept = [label for label in labels if resolve([label])[0] not in SIZE_ONE]
    copies = not _attrs(node).get("allowzero", 0)
    lengths = [size(label) for label in kept]
    fits = len(target) == len(kept) and all(
        (isinstance(d, int) and (d == -1 or (d == 0 and copies and k < len(labels) and labels[k] == label)
                                 or (d > 0 and d == n)))
        or (not isinstance(d, int) and d is not None and resolve([d]) == resolve([label]))
        for k, (d, label, n) in enumerate(zip(target, kept, lengths)))
    if not fits:
        names = [r if isinstance(r, str) else "?" for r in resolve(labels)]
        raise g.fail(node, f"shape={target} does more than drop the size-one axes of [{', '.join(names)}]: cannot "
                           "establish the batch and time axes")
    return kept


def _axes(g: Graph, graph_input: str, before: list, stack: list, after: list, start: str) -> DataPath:
    """Follow the axis labels along the path (module docstring) and return the ``DataPath``;
    ``InteropError`` naming the node and attribute where the arrangement cannot be established."""
    info = g.inputs[graph_input]
    dims = [d.dim_value if d.dim_value > 0 else None for d in info.type.tensor_type.shape.dim]
    if not info.type.tensor_type.HasField("shape") or not dims:
        raise InteropError(f"{g.source}: graph input {graph_input!r} has no stated rank: cannot establish its "
                           "batch and time axes")
    roles = {}  # unknown input axis -> role
    labels = [("input", k) for k in range(len(dims))]
    hidden_size = None  # of the recurrent node whose Y the labels follow
    seen = {graph_input: labels}  # tensor on the data path -> its axis labels (what a Shape node reads)

    def resolve(axes):
        return [roles.get(a, a) for a in axes]

    def size(label) -> int | None:
        """The length of an axis when the graph states it: the batch and time axes from the graph
        input's dimensions, the hidden units from the recurrent node, 1 for a size-one axis."""
        role = resolve([label])[0]
        if role in SIZE_ONE:
            return 1
        if role == HIDDEN:
            return hidden_size
        axis = next((k for (_, k), r in roles.items() if r == role), None)
        return None if axis is None else dims[axis]

    def step(node, labels):
        out = step_labels(node, labels)
        seen[node.output[0]] = out
        return out

    def step_labels(node, labels):
        op = node.op_type
        if op in PASS_THROUGH or op in ("Div", "Tanh") or (op == "Add"):
            return labels
        if op == "Gather":
            if _attrs(node).get("axis", 0) != 0:
                raise g.fail(node, "a lookup along an axis other than 0 is not supported")
            return labels + [FEATURES]
        if op == "Transpose":
            perm = _attrs(node).get("perm", list(range(len(labels)))[::-1])
            return [labels[p] for p in perm]
        if op in ("Squeeze", "Unsqueeze"):
            axes = _const_axes(node, g)
            if axes is None:
                raise g.fail(node, "no axes given (a batch or time of size 1 would be squeezed too): cannot "
                                   "establish the batch and time axes")
            if op == "Unsqueeze":
                out = list(labels)
                rank = len(labels) + len(axes)
                for a in sorted(a % rank for a in axes):
                    out.insert(a, ONE)
                return out
            axes = {a % len(labels) for a in axes}
            if any(resolve([labels[a]])[0] not in SIZE_ONE for a in axes):
                raise g.fail(node, f"axes={sorted(axes)} removes a batch, time or feature axis: cannot establish "
                                   "the arrangement")
            return [a for k, a in enumerate(labels) if k not in axes]
        if op == "Reshape":
            return _reshaped(node, g, labels, resolve, size, seen)
        if op in ("MatMul", "Gemm"):
            if resolve(labels)[-1] != HIDDEN:
                raise g.fail(node, "the output layer does not read the hidden units on the last axis")
            return labels[:-1] + [OUTPUTS]
        if op == "Softmax":
            rank = len(labels)
            axis = _attrs(node).get("axis", -1 if g.opset >= 13 else 1) % rank
            if axis != rank - 1 or labels[axis] != OUTPUTS:
                raise g.fail(node, f"axis={axis} is not the output axis (the last): not a per-step softmax")
            return labels
        raise g.fail(node, "cannot establish the batch and time axes through this node")

    for node in before:
        labels = step(node, labels)
    y_labels = None  # the axes of the previous recurrent node's Y
    for k, node in enumerate(stack):
        if k:
            between, _ = g.back_to_source(node.input[0], node)
            labels = list(y_labels)
            for n in between:
                labels = step(n, labels)
        layout = _attrs(node).get("layout", 0)
        if layout not in (0, 1):
            raise g.fail(node, f"layout={layout} is not 0 or 1")
        if len(labels) != 3:
            raise g.fail(node, f"its input X has {len(labels)} axes, not 3: cannot establish the arrangement")
        want = [TIME, BATCH] if layout == 0 else [BATCH, TIME]
        features = resolve(labels)[2]
        if features in (TIME, BATCH) or (k and features != HIDDEN):
            raise g.fail(node, f"layout={layout}: axis 2 of its input X is not the features")
        for label, role in zip(labels[:2], want):
            role_now = resolve([label])[0]
            if isinstance(role_now, tuple):
                if role in roles.values():
                    raise g.fail(node, f"layout={layout}: the {role} axis would be two axes of the graph input")
                roles[role_now] = role
            elif role_now != role:
                raise g.fail(node, f"layout={layout} reads axis {labels.index(label)} of X as the {role} axis, but "
                                   f"it is the {role_now} axis")
        if isinstance(labels[2], tuple):
            roles[labels[2]] = FEATURES
        hidden_size = _attrs(node)["hidden_size"]
        y_labels = [TIME, DIRECTIONS, BATCH, HIDDEN] if layout == 0 else [BATCH, TIME, DIRECTIONS, HIDDEN]
        seen[node.output[0]] = y_labels
    last_layout = _attrs(stack[-1]).get("layout", 0)
    if start == stack[-1].output[0]:
        labels = y_labels
    else:
        labels = [DIRECTIONS, BATCH, HIDDEN] if last_layout == 0 else [BATCH, DIRECTIONS, HIDDEN]
        seen[start] = labels
    for node in after:
        labels = step(node, labels)
    input_axes = resolve([("input", k) for k in range(len(dims))])
    unknown = [k for k, a in enumerate(input_axes) if isinstance(a, tuple)]
    if unknown:
        raise InteropError(f"{g.source}: graph input {graph_input!r}: cannot establish what axis {unknown[0]} is")
    labels = resolve(labels)
    end = after[-1].output[0] if after else start
    if BATCH not in labels or labels[-1] not in (OUTPUTS, HIDDEN) or \
            any(a not in (BATCH, TIME, OUTPUTS, HIDDEN) + SIZE_ONE for a in labels):
        raise InteropError(f"{g.source}: the output {end!r} has axes {labels}: cannot compare it per batch and step")
    return DataPath(graph_input, input_axes, stack, end, labels, dims,
                    ends_in_softmax=any(n.op_type == "Softmax" for n in after))


def _recurrent_layer(node, g: Graph) -> dict:
    attrs = _attrs(node)
    op, source, label = node.op_type, g.source, _label(node)
    consts = g.consts
    if attrs.get("direction", b"forward") not in (b"forward", "forward"):
        raise InteropError(f"{source}: {label}: direction={attrs['direction']!r} (bidirectional or reverse) "
                           "is not supported")
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if acts and acts != DEFAULT_ACTIVATIONS[op]:
        raise InteropError(f"{source}: {label}: activations={acts} are not the default {DEFAULT_ACTIVATIONS[op]}")
    for name in ("clip", "activation_alpha", "activation_beta"):
        if name in attrs:
            raise InteropError(f"{source}: {label}: attribute {name} is not supported")
    if attrs.get("input_forget", 0):
        raise InteropError(f"{source}: {label}: input_forget=1 (coupled input and forget gates) is not supported")
    if op == "GRU" and attrs.get("linear_before_reset", 0) != 1:
        raise InteropError(f"{source}: {label}: linear_before_reset=0 (Keras reset_after=False) is not supported; "
                           "only the PyTorch form, linear_before_reset=1, can be stepped exactly")
    inputs = list(node.input) + [""] * (8 - len(node.input))
    if inputs[4]:
        raise InteropError(f"{source}: {label}: sequence_lens is not supported (every sequence runs to its end)")
    if op == "LSTM" and inputs[7]:
        raise InteropError(f"{source}: {label}: peepholes (input P) are not supported")
    for slot in (5, 6):
        if inputs[slot] in consts and np.any(consts[inputs[slot]]):
            raise InteropError(f"{source}: {label}: a non-zero constant initial state is not supported")
    for slot, name in ((1, "W"), (2, "R")):
        if inputs[slot] not in consts:
            raise InteropError(f"{source}: {label}: weight {name} is not a constant initializer")
    W, R = consts[inputs[1]], consts[inputs[2]]
    if W.shape[0] != 1:
        raise InteropError(f"{source}: {label}: {W.shape[0]} directions (bidirectional) are not supported")
    B = consts.get(inputs[3]) if inputs[3] else None
    return from_onnx(op.lower(), W, R, B)


def _head(node, g: Graph) -> tuple:
    """``(W (H, O), b (O,) or None)`` from a MatMul or Gemm node whose weight is a constant."""
    consts = g.consts
    if node.input[1] not in consts:
        raise g.fail(node, "the output layer's weight is not a constant initializer")
    W = np.asarray(consts[node.input[1]])  # (H, O) or (O, H)
    if node.op_type == "MatMul":
        return W.copy(), None
    attrs = _attrs(node)
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise g.fail(node, "Gemm with alpha, beta or transA is not supported")
    W = W.T.copy() if attrs.get("transB", 0) else W.copy()
    b = np.asarray(consts[node.input[2]]).reshape(-1) if len(node.input) > 2 and node.input[2] in consts else None
    return W, b


def parity(proto, path: DataPath, found: Recognised, model, rng: np.random.Generator) -> Parity:
    """Run the ONNX graph in onnxruntime and ``model`` on the same random input, arranged as
    the graph's input axes say (``DataPath``); compare the path's end, brought back to
    ``(B, T, O)`` (or ``(B, O)`` when the graph reads the last step only), and the final states."""
    try:
        import onnxruntime
    except ImportError:
        return Parity("parity: onnxruntime is not installed, so the source was not run; checked instead: every "
                      "node's type, attributes and initializer shapes, and the axes along the data path")
    import onnx
    from onnx import helper

    proto = onnx.ModelProto.FromString(proto.SerializeToString())  # a copy to add outputs to
    batch_axis = next(i for i in proto.graph.input if i.name == path.input_name).type.tensor_type.shape.dim[
        path.input_axes.index(BATCH)]
    zeros = _zero_states(proto, found.names["initial states from graph inputs, taken as zeros"],
                         path.input_dims[path.input_axes.index(BATCH)] or 2, batch_axis.dim_param)
    batchwise = _as_time_major(proto)
    ours_axis = {BATCH: 0, TIME: 1, FEATURES: 2}
    B = path.input_dims[path.input_axes.index(BATCH)] or 2
    T = path.input_dims[path.input_axes.index(TIME)] or 7
    cfg = model.config
    if cfg.input_kind == "dense":
        inputs = rng.standard_normal((B, T, cfg.input_size)).astype(np.float32)  # (B, T, D)
    else:
        inputs = rng.integers(0, cfg.input_size, (B, T))  # (B, T)
    elem = next(i for i in proto.graph.input if i.name == path.input_name).type.tensor_type.elem_type
    source_inputs = inputs  # (B, T) ids or (B, T, D) values, as the graph reads them
    if cfg.input_kind != "dense" and FEATURES in path.input_axes:  # a graph reading one-hot vectors, not ids
        source_inputs = np.eye(cfg.input_size, dtype=np.float32)[inputs]  # (B, T, V)
    feed = source_inputs.transpose([ours_axis[a] for a in path.input_axes]).astype(
        helper.tensor_dtype_to_np_dtype(elem))  # the graph input's axes: (T, B), (B, T, V), ...
    finals = {(k, j): node.output[j + 1] for k, node in enumerate(path.recurrent) for j in (0, 1)
              if len(node.output) > j + 1 and node.output[j + 1]}  # (layer, state index) -> Y_h / Y_c
    existing = {o.name for o in proto.graph.output}
    for name in [path.output_name, *finals.values()]:
        if name not in existing:
            proto.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            existing.add(name)
    where = f"parity with onnxruntime {onnxruntime.__version__}"
    feeds = {path.input_name: feed, **zeros}
    try:
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        results = dict(zip(names, session.run(None, feeds)))
    except Exception as e:  # onnxruntime raises its own Fail/InvalidArgument types for graphs it cannot run
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return Parity(f"parity: onnxruntime {onnxruntime.__version__} could not run the graph ({first}); not compared")
    out = np.asarray(results[path.output_name], np.float64)
    if out.ndim != len(path.output_axes) or any(out.shape[k] != 1 for k, a in enumerate(path.output_axes)
                                                 if a in SIZE_ONE):
        return Parity(f"{where}: {path.output_name!r} has shape {out.shape}, not the axes {path.output_axes}: "
                      "outputs not compared")
    kept = [a for a in path.output_axes if a not in SIZE_ONE]
    out = out.reshape([n for n, a in zip(out.shape, path.output_axes) if a not in SIZE_ONE])
    order = [a for a in (BATCH, TIME, OUTPUTS, HIDDEN) if a in kept]
    out = out.transpose([kept.index(a) for a in order])  # (B, T, O) or (B, O)
    if cfg.head == "softmax" and not path.ends_in_softmax:
        out = logits_to_probabilities(out)  # (B, T, O) or (B, O): the graph ends in logits
    ours = model.forward(inputs)
    expected = ours.outputs if TIME in kept else ours.outputs[:, -1]  # (B, T, O) or (B, O)
    if out.shape != expected.shape:
        return Parity(f"{where}: {path.output_name!r} has shape {out.shape}, ours {expected.shape}: outputs not "
                      "compared")
    d_out = float(np.abs(expected - out).max())
    d_state = max((float(np.abs(ours.state[k][j] - results[name].reshape(B, -1)).max())
                   for (k, j), name in finals.items()), default=None)
    states = ("the recurrent nodes do not output their final states (Y_h, Y_c): not compared" if d_state is None
              else f"max |d final state| = {d_state:.2e}")
    last = "" if TIME in kept else " (the graph reads the last step only)"
    axes = " x ".join({BATCH: "batch", TIME: "time", FEATURES: "features"}[a] for a in path.input_axes)
    rewritten = (f"; {len(batchwise)} layout=1 node(s) run as their specified equivalent, Transpose + layout=0 + "
                 "Transpose, which onnxruntime needs") if batchwise else ""
    return Parity(f"{where} (float32, {B}x{T} random inputs fed as [{axes}]{rewritten}): max |d outputs| = "
                  f"{d_out:.2e}{last}, {states}", max(d_out, d_state or 0.0))


def _zero_states(proto, state_inputs: list, B: int, batch_name: str = "") -> dict:
    """Zeros for the graph inputs ``state_inputs`` (``Graph.state_inputs``: they feed the
    recurrent nodes' ``initial_h``/``initial_c``; the imported model starts from zero states,
    as the viewer does): ``{name: float32 array}`` of the shape the graph declares, ``B`` for
    a dimension named as the sequence's batch (``batch_name``) or unnamed and open, 1 for any
    other open one; without a declared shape ``(1, B, H)``, or ``(B, 1, H)`` for a
    ``layout=1`` node it feeds directly."""
    declared = {i.name: i.type.tensor_type for i in proto.graph.input}
    zeros = {}
    for name in state_inputs:
        if declared[name].HasField("shape"):
            shape = [d.dim_value if d.dim_value > 0 else B if d.dim_param in ("", batch_name) else 1
                     for d in declared[name].shape.dim]
        else:
            recurrent = [n for n in proto.graph.node if n.op_type in RECURRENT_OPS]
            node = next((n for n in recurrent if name in list(n.input)[5:7]), recurrent[0])
            H = _attrs(node)["hidden_size"]
            shape = (B, 1, H) if _attrs(node).get("layout", 0) == 1 else (1, B, H)  # dirs = 1
        zeros[name] = np.zeros(shape, np.float32)  # e.g. (L, B, H)
    return zeros


def _as_time_major(proto) -> list:
    """Rewrite, in place, each recurrent node of ``proto`` with ``layout=1`` (which onnxruntime's
    CPU kernels do not run) into the form the ONNX specification defines it
    by: ``X``, ``initial_h``, ``initial_c`` transposed to time-major, the node with
    ``layout=0``, and ``Y [T, dirs, B, H]`` / ``Y_h``, ``Y_c [dirs, B, H]`` transposed back.
    Returns the rewritten nodes' names."""
    from onnx import helper

    nodes, done = [], []
    for node in proto.graph.node:
        if node.op_type not in RECURRENT_OPS or _attrs(node).get("layout", 0) != 1:
            nodes.append(node)
            continue
        tag = _name(node)
        for slot in (0, 5, 6):
            if len(node.input) > slot and node.input[slot]:
                nodes.append(helper.make_node("Transpose", [node.input[slot]], [f"{tag}/tm_in{slot}"], perm=[1, 0, 2]))
                node.input[slot] = f"{tag}/tm_in{slot}"
        after = []
        for slot, out in enumerate(node.output):
            if out:
                perm = [2, 0, 1, 3] if slot == 0 else [1, 0, 2]
                after.append(helper.make_node("Transpose", [f"{tag}/tm_out{slot}"], [out], perm=perm))
                node.output[slot] = f"{tag}/tm_out{slot}"
        kept = [a for a in node.attribute if a.name != "layout"]
        del node.attribute[:]
        node.attribute.extend(kept)
        nodes += [node] + after
        done.append(tag)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return done
