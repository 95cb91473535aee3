"""Per-row activation quantization: int8 embeddings that do not depend on the rest of the batch.

ONNX Runtime's dynamic quantization gives each MatMul's input one scale for the whole tensor
(``DynamicQuantizeLinear``), so a text's vector depends on whatever shares its forward pass. This
rewrite gives every row (one token of one text) its own symmetric scale instead:

    x (..., K) -> reshape (M, K) -> s = max|x| per row / 127 -> q = round(x / s) + 128 (uint8, per row)
    -> MatMulIntegerToFloat(q, W int8, per-column weight scales) -> x rows scaled by s -> (..., N)

Integer products are exact and every other operation works per row or per text, so a text gets the
same vector alone or with any companions. Weights keep ONNX Runtime's per-channel int8
quantization; MatMuls between two activations (attention scores) stay fp32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

QUANTIZED_RANGE = 127.0
ZERO_POINT = 128  # symmetric rows stored as uint8, the layout ONNX Runtime's u8s8 kernels want


def activation_matmuls(model) -> list[str]:  # noqa: ANN001 - onnx.ModelProto
    """Names of MatMul nodes whose second input is not a weight (activation x activation): kept fp32."""
    weights = {init.name for init in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in weights]


def quantize_per_row(fp32_path: Path, out_path: Path, *, reduce_range: bool) -> dict:
    """Write the per-row int8 graph of ``fp32_path`` to ``out_path``; return what was chosen."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path))
    excluded = activation_matmuls(model)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic advises shape pre-processing on the root logger; not needed here
    try:
        quantize_dynamic(str(fp32_path), str(out_path), op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=reduce_range, weight_type=QuantType.QInt8, nodes_to_exclude=excluded)
    finally:
        root.setLevel(level)
    quantized = onnx.load(str(out_path))
    rewritten = rewrite_rows(quantized)
    onnx.save(quantized, str(out_path))
    return {"method": "per_row", "activations": "QUInt8 symmetric, one scale per row",
            "weights": "QInt8 per channel", "reduce_range": reduce_range, "matmuls": rewritten,
            "fp32_matmuls": len(excluded)}


class _Graph:
    """Index of an ONNX graph's producers and consumers, and a builder of uniquely named nodes."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.graph = model.graph
        self.producer = {out: n for n in self.graph.node for out in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.graph.node:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)
        self.initializers = {init.name: init for init in self.graph.initializer}
        self.new_nodes: list = []
        self.counter = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"per_row/{stem}_{self.counter}"

    def constant(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(stem)
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], stem: str, output: str | None = None, domain: str = "",
             **attrs) -> str:
        from onnx import helper

        out = output or self.fresh(stem)
        self.new_nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(op), domain=domain, **attrs))
        return out

    def only_consumer(self, name: str, op: str):
        users = self.consumers.get(name, [])
        if len(users) != 1 or users[0].op_type != op:
            raise ValueError(f"unexpected quantized graph: {name} is not used by exactly one {op}")
        return users[0]


def _opset(model) -> int:  # noqa: ANN001
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def rewrite_rows(model) -> int:  # noqa: ANN001 - onnx.ModelProto, changed in place
    """Replace every DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul chain by per-row
    quantization feeding MatMulIntegerToFloat. Returns the number of MatMuls rewritten."""
    from onnx import helper

    g = _Graph(model)
    removed: set[int] = set()
    rewritten = 0
    zero_point = g.constant("zero_point", np.array(ZERO_POINT, dtype=np.uint8))
    one = g.constant("one", np.array(1.0, dtype=np.float32))
    top = g.constant("range", np.array(QUANTIZED_RANGE, dtype=np.float32))
    tiny = g.constant("tiny", np.array(1e-12, dtype=np.float32))
    minus_one = g.constant("minus_one", np.array([-1], dtype=np.int64))
    axis_one = g.constant("axis_one", np.array([1], dtype=np.int64))
    start = g.constant("start", np.array([0], dtype=np.int64))
    stop_last = g.constant("last", np.array([-1], dtype=np.int64))
    reduce_axes_as_input = _opset(model) >= 18

    for dql in [n for n in g.graph.node if n.op_type == "DynamicQuantizeLinear"]:
        x, xq, x_scale = dql.input[0], dql.output[0], dql.output[1]
        users = g.consumers.get(xq, [])
        if not users or any(u.op_type != "MatMulInteger" for u in users):
            raise ValueError(f"unexpected quantized graph: {xq} feeds {[u.op_type for u in users]}")
        weight = g.initializers[users[0].input[1]]
        k = int(weight.dims[0])
        # one per-row quantization of x, shared by every MatMul that reads it
        rows = g.node("Reshape", [x, g.constant("rows_shape", np.array([-1, k], dtype=np.int64))], "rows")
        magnitude = g.node("Abs", [rows], "abs")
        if reduce_axes_as_input:
            peak = g.node("ReduceMax", [magnitude, axis_one], "peak", keepdims=1)
        else:
            peak = g.node("ReduceMax", [magnitude], "peak", axes=[1], keepdims=1)
        scale = g.node("Div", [g.node("Max", [peak, tiny], "peak_floor"), top], "row_scale")  # (M, 1)
        scale_1d = g.node("Reshape", [scale, minus_one], "row_scale_1d")
        zero_points = g.node("Expand", [zero_point, g.node("Shape", [scale_1d], "rows_count")], "zero_points")
        q = g.node("QuantizeLinear", [rows, scale_1d, zero_points], "rows_q", axis=0)
        lead_shape = g.node("Slice", [g.node("Shape", [x], "x_shape"), start, stop_last], "lead_shape")
        for mmi in users:
            cast = g.only_consumer(mmi.output[0], "Cast")
            out_mul = g.only_consumer(cast.output[0], "Mul")
            scale_mul = g.producer[next(i for i in out_mul.input if i != cast.output[0])]
            w_scale = next(i for i in scale_mul.input if i != x_scale)
            w_zp = mmi.input[3] if len(mmi.input) > 3 else ""
            n_out = int(g.initializers[mmi.input[1]].dims[1])
            product = g.node("MatMulIntegerToFloat", [q, mmi.input[1], one, w_scale, zero_point, w_zp],
                             "product", domain="com.microsoft")
            scaled = g.node("Mul", [product, scale], "scaled")
            shape = g.node("Concat", [lead_shape, g.constant("n", np.array([n_out], dtype=np.int64))], "out_shape",
                           axis=0)
            g.node("Reshape", [scaled, shape], "out", output=out_mul.output[0])
            removed.update(id(n) for n in (mmi, cast, out_mul, scale_mul))
            rewritten += 1
        removed.add(id(dql))

    kept = [n for n in g.graph.node if id(n) not in removed]
    del g.graph.node[:]
    g.graph.node.extend(kept + g.new_nodes)
    _sort_topologically(g.graph)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return rewritten


def _sort_topologically(graph) -> None:  # noqa: ANN001
    available = {i.name for i in graph.input} | {init.name for init in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the rewritten graph has a cycle or a missing input")
        for n in ready:
            available.update(n.output)
        ordered.extend(ready)
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)
