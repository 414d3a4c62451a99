"""The workload: a small ResNet-like CNN whose host ops launch device kernels, one step at a time.

Host op names avoid every affinity-API pattern of the reference rules (no gelu, softmax chains,
permute/view, mul-mul-add, stock optimizers), kernel block dims are multiples of the core counts and
every kernel is bound by one unit: a clean run triggers no computation or schedule check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .faults import UNALIGNED_SLOWDOWN

AI_CORE_NUM = 24  # Ascend 910B: cube cores
AIV_NUM = 48  # vector cores
NOMINAL_MHZ = 1800

CNN_ACTIVATION = ("aten::convolution", "Conv2D", "Conv2DBackpropInput")
_FILE = "/home/ma-user/work/resnet/train.py"
_TORCH = "/usr/local/python3.9/lib/python3.9/site-packages/torch"


@dataclass(frozen=True, slots=True)
class KernelTemplate:
    type: str
    core: str  # Accelerator Core column: AI_CORE, AI_VECTOR_CORE, MIX_AIV, AI_CPU
    weight: float  # relative device time within its phase
    inputs: str  # shapes, ";" between tensors
    in_dtypes: str
    outputs: str
    out_dtypes: str
    bound: str  # the PMU unit that dominates: mac, vec, mte3 or none
    acl: str  # the aclnn API that launches it
    block_dim: int = 0  # 0: the clean default for the core type
    fixed_us: float = 0.0  # AI_CPU kernels have their own duration instead of a share of the phase
    node: str = ""  # graph mode: the GE node name, which is the kernel's name (no aclnn API launches it)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        impl = {"AI_CORE": "", "AI_CPU": "AiCpu"}.get(self.core, "AiCore")
        object.__setattr__(self, "name", self.node or f"{self.acl}_{self.type}{impl}_{self.type}")

    @property
    def formats(self) -> tuple[str, str]:
        fmt = "FORMAT_ND" if self.core in ("AI_CPU", "MIX_AIV") else "NCHW"
        return (
            ";".join([fmt] * len(self.in_dtypes.split(";"))),
            ";".join([fmt] * len(self.out_dtypes.split(";"))),
        )

    def default_block_dim(self) -> int:
        if self.block_dim:
            return self.block_dim
        return {"AI_CORE": AI_CORE_NUM, "AI_CPU": 1}.get(self.core, AIV_NUM)


@dataclass(frozen=True, slots=True)
class OpTemplate:
    """One top-level host op and the kernels it launches."""

    outer: str
    inner: str | None  # the nested aten op that launches the kernels
    phase: str  # forward, backward or optimizer
    kernels: tuple[KernelTemplate, ...]
    stack: str  # "Call stack" of the outer op
    input_dims: str
    collective: tuple[str, int] | None = None  # (allgather | allreduce, bytes per rank) issued after it
    span: str | None = None  # the event enclosing consecutive ops with this span (an autograd Function)


@dataclass(frozen=True)
class Model:
    """A training step's ops. The CNN's `forward` is `layer_ops` ops per layer then the head's ops and
    its `backward` is (head group, one group per layer from the last): the layout pipeline.py cuts
    stages from."""

    forward: tuple[OpTemplate, ...]
    backward: tuple[tuple[OpTemplate, ...], ...]  # per layer group, in execution order
    optimizer: tuple[OpTemplate, ...]
    optimizer_name: str
    layer_ops: int = 3
    weights_us: bool = False  # kernel weights are durations in µs (the LLM's) rather than shares
    # memory_record/operator_memory: (allocating op, its kernel type, the kernel type that frees it)
    activation: tuple[str, str, str] = CNN_ACTIVATION


def _stack(*frames: str) -> str:
    return ";\r\n".join(frames)


def _dims(shapes: str) -> str:
    return ";\r\n".join(shapes.split(";"))


def _fwd_stack(module: str, line: int) -> str:
    return _stack(
        f"{_TORCH}/nn/modules/{module}.py({line}): forward",
        f"{_TORCH}/nn/modules/module.py(1527): _call_impl",
        f"{_FILE}(88): train_step",
        f"{_FILE}(141): main",
    )


def _bwd_stack() -> str:
    return _stack(f"{_TORCH}/autograd/__init__.py(251): backward", f"{_FILE}(92): train_step")


def _op(
    outer: str,
    inner: str | None,
    phase: str,
    kernels: list[KernelTemplate],
    stack: str,
    collective: tuple[str, int] | None = None,
    span: str | None = None,
) -> OpTemplate:
    return OpTemplate(outer, inner, phase, tuple(kernels), stack, _dims(kernels[0].inputs), collective, span)


def _layer_shape(layer: int, layers: int) -> tuple[int, int]:
    stage = layer * 4 // max(layers, 1)
    return min(512, 64 << stage), max(7, 56 >> stage)


def _sync_bn_stack(frame: str) -> str:
    return _stack(
        f"{_TORCH}/nn/modules/_functions.py({frame}",
        f"{_TORCH}/autograd/function.py(539): apply",
        f"{_TORCH}/nn/modules/batchnorm.py(822): forward",
        f"{_TORCH}/nn/modules/module.py(1527): _call_impl",
        f"{_FILE}(88): train_step",
        f"{_FILE}(141): main",
    )


def _sync_bn_forward(
    act: str, c: int, world: int, stats: KernelTemplate, elemt: KernelTemplate
) -> list[OpTemplate]:
    """torch.nn.modules._functions.SyncBatchNorm.forward: local statistics, an all-gather of
    (mean, invstd, count) = 2C + 1 floats per rank, the counts masked (a host sync, see plan.py),
    then the gathered statistics combined and applied. The autograd Function's apply is recorded
    under its class name, 'SyncBatchNorm' (what the reference counts)."""
    gather = KernelTemplate(
        "SyncBatchNormGatherStatsWithCounts",
        "AI_VECTOR_CORE",
        0.05,
        f"{act};{world},{c};{world},{c};{c};{c};{world}",
        "FLOAT16;FLOAT;FLOAT;FLOAT;FLOAT;FLOAT",
        f"{c};{c}",
        "FLOAT;FLOAT",
        "vec",
        "aclnnBatchNormGatherStatsWithCounts",
    )
    stack = _sync_bn_stack("41): forward")
    return [
        _op(
            "aten::batch_norm_stats",
            None,
            "forward",
            [replace(stats, acl="aclnnBatchNormStats")],
            stack,
            collective=("allgather", (2 * c + 1) * 4),
            span="SyncBatchNorm",
        ),
        _op(
            "aten::batch_norm_gather_stats_with_counts",
            None,
            "forward",
            [gather],
            stack,
            span="SyncBatchNorm",
        ),
        _op(
            "aten::batch_norm_elemt",
            None,
            "forward",
            [replace(elemt, acl="aclnnBatchNormElemt")],
            stack,
            span="SyncBatchNorm",
        ),
    ]


def _sync_bn_backward(c: int, bn_grad: list[KernelTemplate]) -> list[OpTemplate]:
    """SyncBatchNorm.backward: the per-channel sums (sum_dy, sum_dy_xmu) all-reduced, then dx."""
    span = "autograd::engine::evaluate_function: SyncBatchNormBackward"
    update_grad, reduce_grad = bn_grad[1], bn_grad[0]
    return [
        _op(
            "aten::batch_norm_backward_reduce",
            None,
            "backward",
            [replace(update_grad, acl="aclnnBatchNormReduceBackward")],
            _bwd_stack(),
            collective=("allreduce", 2 * c * 4),
            span=span,
        ),
        _op(
            "aten::batch_norm_backward_elemt",
            None,
            "backward",
            [replace(reduce_grad, acl="aclnnBatchNormElemtBackward")],
            _bwd_stack(),
            span=span,
        ),
    ]


def build_model(
    layers: int,
    batch: int,
    gelu: bool = False,
    stock_optimizer: bool = False,
    sync_bn: int = 0,
    unaligned_head: bool = False,
) -> Model:
    """The op sequence of one training step; `gelu`/`stock_optimizer` build in affinity-API patterns,
    `sync_bn` (the group size) SyncBatchNorm layers, `unaligned_head` MTE2-bound classifier MatMuls."""
    b = batch
    forward: list[OpTemplate] = []
    backward: list[tuple[OpTemplate, ...]] = []
    grad_elements = 0
    for layer in range(layers):
        c, hw = _layer_shape(layer, layers)
        act = f"{b},{c},{hw},{hw}"
        # ResNet stages keep conv FLOPs constant (channels double as the image halves).
        memory = c * hw * hw / (64 * 56 * 56)
        conv = KernelTemplate(
            "Conv2D",
            "AI_CORE",
            10.0,
            f"{act};{c},{c},3,3",
            "FLOAT16;FLOAT16",
            act,
            "FLOAT16",
            "mac",
            "aclnnConvolution",
        )
        bn_reduce = KernelTemplate(
            "BNTrainingReduce",
            "AI_VECTOR_CORE",
            1.6 * memory,
            act,
            "FLOAT16",
            f"{c};{c}",
            "FLOAT;FLOAT",
            "vec",
            "aclnnBatchNorm",
        )
        bn_update = KernelTemplate(
            "BNTrainingUpdate",
            "AI_VECTOR_CORE",
            2.0 * memory,
            f"{act};{c};{c};{c};{c}",
            "FLOAT16;FLOAT;FLOAT;FLOAT;FLOAT",
            f"{act};{c};{c}",
            "FLOAT16;FLOAT;FLOAT",
            "mte3",
            "aclnnBatchNorm",
        )
        if gelu:
            act_kernel = KernelTemplate(
                "Gelu", "AI_VECTOR_CORE", 1.4 * memory, act, "FLOAT16", act, "FLOAT16", "vec", "aclnnGelu"
            )
            act_op = _op("aten::gelu", None, "forward", [act_kernel], _fwd_stack("activation", 681))
        else:
            act_kernel = KernelTemplate(
                "Relu",
                "AI_VECTOR_CORE",
                1.0 * memory,
                act,
                "FLOAT16",
                act,
                "FLOAT16",
                "vec",
                "aclnnInplaceRelu",
            )
            act_op = _op("aten::relu_", None, "forward", [act_kernel], _fwd_stack("activation", 103))
        if sync_bn:
            norm = _sync_bn_forward(act, c, sync_bn, bn_reduce, bn_update)
        else:
            norm = [
                _op(
                    "aten::batch_norm",
                    "aten::native_batch_norm",
                    "forward",
                    [bn_reduce, bn_update],
                    _fwd_stack("batchnorm", 171),
                )
            ]
        forward += [
            _op("aten::conv2d", "aten::convolution", "forward", [conv], _fwd_stack("conv", 456)),
            *norm,
            act_op,
        ]
        act_grad = KernelTemplate(
            "GeluGrad" if gelu else "ReluGrad",
            "AI_VECTOR_CORE",
            1.2 * memory,
            f"{act};{act}",
            "FLOAT16;FLOAT16",
            act,
            "FLOAT16",
            "vec",
            "aclnnGeluBackward" if gelu else "aclnnThresholdBackward",
        )
        bn_grad = [
            KernelTemplate(
                "BNTrainingReduceGrad",
                "AI_VECTOR_CORE",
                1.8 * memory,
                f"{act};{act};{c};{c}",
                "FLOAT16;FLOAT16;FLOAT;FLOAT",
                act,
                "FLOAT16",
                "vec",
                "aclnnBatchNormBackward",
            ),
            KernelTemplate(
                "BNTrainingUpdateGrad",
                "AI_VECTOR_CORE",
                1.6 * memory,
                f"{act};{act};{c};{c}",
                "FLOAT16;FLOAT16;FLOAT;FLOAT",
                f"{c};{c}",
                "FLOAT;FLOAT",
                "vec",
                "aclnnBatchNormBackward",
            ),
        ]
        conv_grad = [
            KernelTemplate(
                "Conv2DBackpropInput",
                "AI_CORE",
                10.0,
                f"{act};{c},{c},3,3",
                "FLOAT16;FLOAT16",
                act,
                "FLOAT16",
                "mac",
                "aclnnConvolutionBackward",
            ),
            KernelTemplate(
                "Conv2DBackpropFilter",
                "AI_CORE",
                10.0,
                f"{act};{act}",
                "FLOAT16;FLOAT16",
                f"{c},{c},3,3",
                "FLOAT",
                "mac",
                "aclnnConvolutionBackward",
            ),
        ]
        if sync_bn:
            norm_grad = _sync_bn_backward(c, bn_grad)
        else:
            norm_grad = [
                _op(
                    "autograd::engine::evaluate_function: NativeBatchNormBackward0",
                    "aten::native_batch_norm_backward",
                    "backward",
                    bn_grad,
                    _bwd_stack(),
                )
            ]
        backward.append(
            (
                _op(
                    f"autograd::engine::evaluate_function: {'Gelu' if gelu else 'Relu'}Backward0",
                    "aten::gelu_backward" if gelu else "aten::threshold_backward",
                    "backward",
                    [act_grad],
                    _bwd_stack(),
                ),
                *norm_grad,
                _op(
                    "autograd::engine::evaluate_function: ConvolutionBackward0",
                    "aten::convolution_backward",
                    "backward",
                    conv_grad,
                    _bwd_stack(),
                ),
            )
        )
        grad_elements += c * c * 9 + 2 * c
    c, _ = _layer_shape(layers - 1, layers)
    classes = 1000
    # The gradient MatMuls reduce over the 1000 classes (2000 B of fp16) and the batch (64 B): inner
    # axes that are not 256-byte multiples. Unaligned, the GM reads dominate (MTE2-bound, mac ratio
    # ~0.2 like the corpus's "32,1000;1000,4096" MatMul) and the same FLOPs take several times longer.
    head_weight = 1.5 * (UNALIGNED_SLOWDOWN if unaligned_head else 1.0)
    head_bound = "mte2" if unaligned_head else "mac"
    forward += [
        _op(
            "aten::adaptive_avg_pool2d",
            "aten::mean",
            "forward",
            [
                KernelTemplate(
                    "ReduceMean",
                    "AI_VECTOR_CORE",
                    0.4,
                    f"{b},{c},7,7",
                    "FLOAT16",
                    f"{b},{c}",
                    "FLOAT16",
                    "vec",
                    "aclnnMean",
                )
            ],
            _fwd_stack("pooling", 1194),
        ),
        _op(
            "aten::linear",
            "aten::addmm",
            "forward",
            [
                KernelTemplate(
                    "MatMulV2",
                    "AI_CORE",
                    1.5,
                    f"{b},{c};{classes},{c};{classes}",
                    "FLOAT16;FLOAT16;FLOAT16",
                    f"{b},{classes}",
                    "FLOAT16",
                    "mac",
                    "aclnnAddmm",
                )
            ],
            _fwd_stack("linear", 114),
        ),
        _op(
            "aten::cross_entropy_loss",
            "aten::_log_softmax",
            "forward",
            [
                KernelTemplate(
                    "LogSoftmaxV2",
                    "AI_VECTOR_CORE",
                    0.3,
                    f"{b},{classes}",
                    "FLOAT16",
                    f"{b},{classes}",
                    "FLOAT16",
                    "vec",
                    "aclnnLogSoftmax",
                ),
                KernelTemplate(
                    "NLLLoss",
                    "MIX_AIV",
                    0.3,
                    f"{b},{classes};{b};{classes}",
                    "FLOAT16;INT64;FLOAT16",
                    ";",
                    "FLOAT16;FLOAT16",
                    "vec",
                    "aclnnNLLLoss",
                ),
            ],
            _fwd_stack("loss", 1179),
        ),
    ]
    head_bwd = (
        _op(
            "autograd::engine::evaluate_function: NllLossBackward0",
            "aten::nll_loss_backward",
            "backward",
            [
                KernelTemplate(
                    "NLLLossGrad",
                    "AI_VECTOR_CORE",
                    0.3,
                    f"{b},{classes};{b}",
                    "FLOAT16;INT64",
                    f"{b},{classes}",
                    "FLOAT16",
                    "vec",
                    "aclnnNLLLossBackward",
                )
            ],
            _bwd_stack(),
        ),
        _op(
            "autograd::engine::evaluate_function: LogSoftmaxBackward0",
            "aten::_log_softmax_backward_data",
            "backward",
            [
                KernelTemplate(
                    "LogSoftmaxGrad",
                    "AI_VECTOR_CORE",
                    0.3,
                    f"{b},{classes};{b},{classes}",
                    "FLOAT16;FLOAT16",
                    f"{b},{classes}",
                    "FLOAT16",
                    "vec",
                    "aclnnLogSoftmaxBackward",
                )
            ],
            _bwd_stack(),
        ),
        _op(
            "autograd::engine::evaluate_function: AddmmBackward0",
            "aten::mm",
            "backward",
            [
                KernelTemplate(
                    "MatMulV2",
                    "AI_CORE",
                    head_weight,
                    f"{b},{classes};{classes},{c}",
                    "FLOAT16;FLOAT16",
                    f"{b},{c}",
                    "FLOAT16",
                    head_bound,
                    "aclnnMm",
                ),
                KernelTemplate(
                    "MatMulV2",
                    "AI_CORE",
                    head_weight,
                    f"{classes},{b};{b},{c}",
                    "FLOAT16;FLOAT16",
                    f"{classes},{c}",
                    "FLOAT16",
                    head_bound,
                    "aclnnMm",
                ),
            ],
            _bwd_stack(),
        ),
    )
    grad_elements += classes * c + classes
    params = f"{grad_elements}"
    name = "AdamW" if stock_optimizer else "ZeroRedundancyOptimizer"
    opt_stack = _stack(f"{_TORCH}/optim/optimizer.py(373): wrapper", f"{_FILE}(95): train_step")
    optimizer = (
        _op(
            "aten::_foreach_mul_",
            None,
            "optimizer",
            [
                KernelTemplate(
                    "ForeachMulScalar",
                    "AI_VECTOR_CORE",
                    3.0,
                    params,
                    "FLOAT",
                    params,
                    "FLOAT",
                    "vec",
                    "aclnnForeachMulScalar",
                )
            ],
            opt_stack,
        ),
        _op(
            "aten::_foreach_addcmul_",
            None,
            "optimizer",
            [
                KernelTemplate(
                    "ForeachAddcmulScalar",
                    "AI_VECTOR_CORE",
                    4.0,
                    f"{params};{params};{params}",
                    "FLOAT;FLOAT;FLOAT",
                    params,
                    "FLOAT",
                    "vec",
                    "aclnnForeachAddcmulScalar",
                )
            ],
            opt_stack,
        ),
        _op(
            "aten::_foreach_add_",
            None,
            "optimizer",
            [
                KernelTemplate(
                    "ForeachAddList",
                    "AI_VECTOR_CORE",
                    3.0,
                    f"{params};{params}",
                    "FLOAT;FLOAT",
                    params,
                    "FLOAT",
                    "mte3",
                    "aclnnForeachAddList",
                )
            ],
            opt_stack,
        ),
    )
    return Model(
        forward=tuple(forward),
        backward=(head_bwd, *reversed(backward)),
        optimizer=optimizer,
        optimizer_name=f"Optimizer.step#{name}.step",
        layer_ops=5 if sync_bn else 3,  # conv, the (Sync)BatchNorm's ops, activation
    )


AICPU_OPS = (
    # (host op, inner op, kernel): the operators the reference's AICPU rules have advice for.
    (
        "aten::nonzero",
        None,
        KernelTemplate(
            "NonZero",
            "AI_CPU",
            0,
            "32,1000",
            "INT64",
            "32,1",
            "INT64",
            "none",
            "aclnnNonzero",
            fixed_us=180.0,
        ),
    ),
    (
        "aten::index_put_",
        "aten::_index_put_impl_",
        KernelTemplate(
            "IndexPutV2",
            "AI_CPU",
            0,
            "32,1000;32;32",
            "FLOAT16;FLOAT16;INT64",
            "32,1000",
            "FLOAT16",
            "none",
            "aclnnIndexPutImpl",
            fixed_us=240.0,
        ),
    ),
    (
        "aten::to",
        "aten::_to_copy",
        KernelTemplate(
            "Cast", "AI_CPU", 0, "32,1000", "DOUBLE", "32,1000", "FLOAT", "none", "aclnnCast", fixed_us=95.0
        ),
    ),
)


def aicpu_ops() -> tuple[OpTemplate, ...]:
    stack = _stack(f"{_FILE}(77): compute_metrics", f"{_FILE}(90): train_step", f"{_FILE}(141): main")
    return tuple(_op(outer, inner, "forward", [kernel], stack) for outer, inner, kernel in AICPU_OPS)


def buckets(model: Model, gradient_mb: float, bucket_mb: float) -> list[int]:
    """Where the all-reduce buckets end: indices into model.backward (a bucket ends after that group)."""
    count = max(1, min(len(model.backward), math.ceil(gradient_mb / bucket_mb)))
    groups = len(model.backward)
    return sorted({round((i + 1) * groups / count) - 1 for i in range(count)})


def ema_ops(layers: int) -> tuple[OpTemplate, ...]:
    """A model EMA updated tensor by tensor after the optimizer, as timm's ModelEmaV2 does (for each
    state_dict entry, ema.copy_(decay * ema + (1 - decay) * value)): four eager ops per tensor whose
    kernels take a few µs (names as in the corpus: aclnnMuls_MulAiCore_Mul, ...) while each launch
    costs the host tens of µs."""
    shapes: list[str] = []
    for layer in range(layers):
        c, _ = _layer_shape(layer, layers)
        shapes += [f"{c},{c},3,3", *[f"{c}"] * 4]  # conv weight; BN weight, bias, running mean and var
    c, _ = _layer_shape(layers - 1, layers)
    shapes += [f"1000,{c}", "1000"]
    stack = _stack(f"{_FILE}(64): ema_update", f"{_FILE}(96): train_step", f"{_FILE}(141): main")
    steps = (
        ("aten::mul", "Mul", "aclnnMuls", "{s};", "FLOAT;FLOAT"),  # decay * ema
        ("aten::mul", "Mul", "aclnnMuls", "{s};", "FLOAT;FLOAT"),  # (1 - decay) * value
        ("aten::add", "Add", "aclnnAdd", "{s};{s}", "FLOAT;FLOAT"),
        ("aten::copy_", "TensorMove", "aclnnInplaceCopy", "{s}", "FLOAT"),
    )
    ops: list[OpTemplate] = []
    for shape in shapes:
        # About 1.5 µs on the vector cores for a small tensor, then HBM-bound (corpus: 1.7 µs for
        # 1000 floats, 27 µs for 4096 x 4096).
        us = 1.5 + math.prod(int(d) for d in shape.split(",")) * 1.5e-6
        for outer, op_type, acl, inputs, dtypes in steps:
            kernel = KernelTemplate(
                op_type,
                "AI_VECTOR_CORE",
                0,
                inputs.format(s=shape),
                dtypes,
                shape,
                "FLOAT",
                "vec",
                acl,
                fixed_us=us,
            )
            ops.append(_op(outer, None, "ema", [kernel], stack))
    return tuple(ops)


@dataclass(frozen=True)
class GraphNode:
    """One node of a GE graph: its data inputs (producer node names, output 0) and its output."""

    name: str
    type: str
    inputs: tuple[str, ...]
    shape: str  # output shape, "" for a scalar
    attrs: tuple[tuple[str, str, str], ...] = ()  # (key, text-format field, value)
    kernel: KernelTemplate | None = None  # None: no task on the device (Data, Const, Reshape, NetOutput)


def attention_graph(batch: int, layers: int) -> list[GraphNode]:
    """The GE graph of a frozen attention-pooling head over the last feature map (CLIP-style, 8 heads,
    e.g. a distillation teacher) compiled with torchair. GE kept the attention unfused:
    BatchMatMulV2 -> Mul -> SoftmaxV2 -> BatchMatMulV2 (FlashAttentionScore would replace it).
    torchair names the inputs arg<i>_1 and the nodes after their type (MatMulV2, MatMulV2_1, ...)."""
    c, hw = _layer_shape(layers - 1, layers)
    tokens, heads = hw * hw + 1, 8
    flat, split = f"{tokens * batch},{c}", f"{batch * heads},{tokens},{c // heads}"
    scores = f"{batch * heads},{tokens},{tokens}"
    nodes: dict[str, GraphNode] = {}

    def add(name: str, op_type: str, inputs: tuple[str, ...], shape: str, **extra: Any) -> None:
        core, bound, weight = extra.pop("kernel", (None, "", 0.0))
        kernel = None
        if core:
            kernel = KernelTemplate(
                op_type,
                core,
                weight,
                ";".join(nodes[i].shape for i in inputs),
                ";".join(["FLOAT16"] * len(inputs)),
                shape,
                "FLOAT16",
                bound,
                "",
                node=name,
            )
        nodes[name] = GraphNode(name, op_type, inputs, shape, extra.get("attrs", ()), kernel)

    add("arg0_1", "Data", (), flat)
    for i in range(1, 9):  # q, k, v and output projections: weight, bias
        add(f"arg{i}_1", "Data", (), f"{c},{c}" if i % 2 else f"{c}")
    add("Const", "Const", (), "3")  # the head-split shape
    add("Const_1", "Const", (), "")  # the 1/sqrt(head dim) scale
    linear = (("transpose_x1", "b", "false"), ("transpose_x2", "b", "true"))
    for i, name in enumerate(("MatMulV2", "MatMulV2_1", "MatMulV2_2")):
        add(
            name,
            "MatMulV2",
            ("arg0_1", f"arg{2 * i + 1}_1", f"arg{2 * i + 2}_1"),
            flat,
            attrs=linear,
            kernel=("AI_CORE", "mac", 0.6),
        )
        add(f"Reshape{'_' + str(i) if i else ''}", "Reshape", (name, "Const"), split)
    add(
        "BatchMatMulV2",
        "BatchMatMulV2",
        ("Reshape", "Reshape_1"),
        scores,
        attrs=(("adj_x1", "b", "false"), ("adj_x2", "b", "true")),
        kernel=("AI_CORE", "mac", 1.0),
    )
    add("Mul", "Mul", ("BatchMatMulV2", "Const_1"), scores, kernel=("AI_VECTOR_CORE", "vec", 0.6))
    add(
        "SoftmaxV2",
        "SoftmaxV2",
        ("Mul",),
        scores,
        attrs=(("axes", "list", "-1"),),
        kernel=("AI_VECTOR_CORE", "vec", 1.2),
    )
    add(
        "BatchMatMulV2_1",
        "BatchMatMulV2",
        ("SoftmaxV2", "Reshape_2"),
        split,
        attrs=(("adj_x1", "b", "false"), ("adj_x2", "b", "false")),
        kernel=("AI_CORE", "mac", 1.0),
    )
    add("Reshape_3", "Reshape", ("BatchMatMulV2_1", "Const"), flat)
    add(
        "MatMulV2_3",
        "MatMulV2",
        ("Reshape_3", "arg7_1", "arg8_1"),
        flat,
        attrs=linear,
        kernel=("AI_CORE", "mac", 0.6),
    )
    add("NetOutput", "NetOutput", ("MatMulV2_3",), flat)
    return list(nodes.values())


def attention_head_ops(batch: int, layers: int) -> tuple[OpTemplate, ...]:
    """One run of the compiled head: torchair records TorchNpuGraphBase::Run around RunGraph
    (torchair/core/torchair.cpp, concrete_graph/session.cpp) and GE launches the graph's kernels."""
    stack = _stack(
        f"{_TORCH}/_dynamo/eval_frame.py(328): _fn",
        f"{_FILE}(84): distill_step",
        f"{_FILE}(90): train_step",
        f"{_FILE}(141): main",
    )
    kernels = [n.kernel for n in attention_graph(batch, layers) if n.kernel is not None]
    return (_op("TorchNpuGraphBase::Run", "RunGraph", "forward", kernels, stack),)
