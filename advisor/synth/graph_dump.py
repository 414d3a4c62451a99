"""A GE graph dump as DUMP_GE_GRAPH=2 writes it: `ge_proto_<5-digit index>_<suffix>.txt`, the protobuf
text format of ge.proto.ModelDef (graph { op { name, type, input "src:index", attr, id, stream_id,
input_desc, output_desc } }), fields in field-number order as TextFormat prints them.

Sources: GE's GraphUtils::DumpGEGraph (file name, ModelDef), ge ir.proto field numbers (as netron's
om-proto.js decodes them), and the line layout that GE's own graph tools parse ("  op {", "    name:",
"    input:", "      key:", "      dtype:", "        dim:"). Weights are not written (level 2).
"""

from __future__ import annotations

from pathlib import Path

from .model import GraphNode

# The final (built) graph: GE dumps every compilation stage before it, so its index is not 0.
DUMP_NAME = "ge_proto_00012_graph_1_Build.txt"
_INPUT_NAMES = {
    "MatMulV2": ("x1", "x2", "bias"),
    "BatchMatMulV2": ("x1", "x2"),
    "Mul": ("x1", "x2"),
    "Reshape": ("x", "shape"),
    "SoftmaxV2": ("x",),
    "NetOutput": ("x",),
}


def _block(name: str, body: list[str], indent: str) -> list[str]:
    return [f"{indent}{name} {{", *body, f"{indent}}}"]


def _desc(name: str, shape: str, indent: str) -> list[str]:
    inner = indent + "  "
    lines = [f'{inner}name: "{name}"', f"{inner}dtype: DT_FLOAT16"]
    if shape:  # a scalar has no dims
        lines += _block("shape", [f"{inner}  dim: {d}" for d in shape.split(",")], inner)
    lines.append(f'{inner}layout: "ND"')
    return lines


def _attr(key: str, kind: str, value: str, indent: str) -> list[str]:
    inner = indent + "  "
    if kind == "list":
        content = _block(
            "list", [f"{inner}    i: {value}", f"{inner}    val_type: VT_LIST_INT"], inner + "  "
        )
    else:
        content = [f"{inner}  {kind}: {value}"]
    return _block("attr", [f'{inner}key: "{key}"', *_block("value", content, inner)], indent)


def graph_text(nodes: list[GraphNode], graph: str = "graph_1") -> str:
    """The dump of one graph: ops in topological order, each with its data inputs and descriptors."""
    shapes = {node.name: node.shape for node in nodes}
    lines = ["graph {", f'  name: "{graph}"']
    for index, node in enumerate(nodes):
        body = [f'    name: "{node.name}"', f'    type: "{node.type}"']
        body += [f'    input: "{src}:0"' for src in node.inputs]
        for key, kind, value in sorted(node.attrs):
            body += _attr(key, kind, value, "    ")
        body += [f"    id: {index}", "    stream_id: 0"]
        names = _INPUT_NAMES.get(node.type, tuple(f"x{i}" for i in range(len(node.inputs))))
        if node.type == "Data":
            body += _block("input_desc", _desc("x", node.shape, "    "), "    ")
        for name, src in zip(names, node.inputs, strict=False):
            body += _block("input_desc", _desc(name, shapes[src], "    "), "    ")
        if node.type != "NetOutput":
            body += _block("output_desc", _desc("y", node.shape, "    "), "    ")
        lines += _block("op", body, "  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph_dump(folder: Path, nodes: list[GraphNode]) -> Path:
    """Write the dump into `folder` (GE writes it into the working directory of the training
    script, DUMP_GRAPH_PATH if set); returns its path."""
    path = folder / DUMP_NAME
    path.write_text(graph_text(nodes), encoding="utf-8")
    return path
