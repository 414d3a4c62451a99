"""The workload: a small ResNet-like CNN whose host ops launch device kernels, one step at a time.

Host op names avoid every affinity-API pattern of the reference rules (no gelu, softmax chains,
permute/view, mul-mul-add, stock optimizers), kernel block dims are multiples of the core counts and
every kernel is bound by one unit: a clean run triggers no computation or schedule check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    name: str = field(init=False)

    def __post_init__(self) -> None:
        impl = {"AI_CORE": "", "AI_CPU": "AiCpu"}.get(self.core, "AiCore")
        object.__setattr__(self, "name", f"{self.acl}_{self.type}{impl}_{self.type}")

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


def _op(outer: str, inner: str | None, phase: str, kernels: list[KernelTemplate], stack: str) -> OpTemplate:
    return OpTemplate(outer, inner, phase, tuple(kernels), stack, _dims(kernels[0].inputs))


def _layer_shape(layer: int, layers: int) -> tuple[int, int]:
    stage = layer * 4 // max(layers, 1)
    return min(512, 64 << stage), max(7, 56 >> stage)


def build_model(layers: int, batch: int, gelu: bool = False, stock_optimizer: bool = False) -> Model:
    """The op sequence of one training step; `gelu`/`stock_optimizer` build in affinity-API patterns."""
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
        forward += [
            _op("aten::conv2d", "aten::convolution", "forward", [conv], _fwd_stack("conv", 456)),
            _op(
                "aten::batch_norm",
                "aten::native_batch_norm",
                "forward",
                [bn_reduce, bn_update],
                _fwd_stack("batchnorm", 171),
            ),
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
        backward.append(
            (
                _op(
                    f"autograd::engine::evaluate_function: {'Gelu' if gelu else 'Relu'}Backward0",
                    "aten::gelu_backward" if gelu else "aten::threshold_backward",
                    "backward",
                    [act_grad],
                    _bwd_stack(),
                ),
                _op(
                    "autograd::engine::evaluate_function: NativeBatchNormBackward0",
                    "aten::native_batch_norm_backward",
                    "backward",
                    bn_grad,
                    _bwd_stack(),
                ),
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
                    1.5,
                    f"{b},{classes};{classes},{c}",
                    "FLOAT16;FLOAT16",
                    f"{b},{c}",
                    "FLOAT16",
                    "mac",
                    "aclnnMm",
                ),
                KernelTemplate(
                    "MatMulV2",
                    "AI_CORE",
                    1.5,
                    f"{classes},{b};{b},{c}",
                    "FLOAT16;FLOAT16",
                    f"{classes},{c}",
                    "FLOAT16",
                    "mac",
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
