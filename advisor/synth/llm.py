"""The LLM workload: a decoder-only transformer (LLaMA-7B-like shapes) trained with Megatron/MindSpeed
on torch_npu, its kernel times derived from FLOPs and bytes so that the run is compute-bound.

Host op names are the ones torch_npu and MindSpeed's fused paths record: `npu::npu_rms_norm`,
`npu::npu_rotary_mul`, `npu::npu_fusion_attention`, `npu::npu_swiglu` and their autograd nodes
(`NpuRmsNormBackward0`, ... as torch_npu's generated autograd code names them), `aten::linear` for the
projections, and torch_npu's NpuFusedAdamW, whose step runs in-place aten ops on flat fp32 buffers
(torch_npu/optim/npu_fused_adamw.py). None of them matches an affinity-API rule (only top-level
`aten::` sequences and stock optimizer classes do). Every inner axis is a multiple of 256 bytes and
head dim and sequence length are multiples of 128, so no alignment rule applies.
"""

from __future__ import annotations

from .model import AI_CORE_NUM, AIV_NUM, NOMINAL_MHZ, KernelTemplate, Model, OpTemplate, _op, _stack

HIDDEN = 4096
HEADS = 32
HEAD_DIM = HIDDEN // HEADS  # 128
SEQ = 4096
FFN = 11008
VOCAB = 32000
LAYER_PARAMS = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * FFN + 2 * HIDDEN
EMBEDDING_PARAMS = VOCAB * HIDDEN
# Cube peak of a 910B: 24 AI cores x 1800 MHz x 16x16x16 MACs (8192 FLOP) per cycle ~ 354 TFLOPS bf16.
CUBE_FLOPS = AI_CORE_NUM * NOMINAL_MHZ * 1e6 * 8192
HBM_BYTES_PER_S = 1.6e12  # 910B HBM2e
# Kernel times assume the middle of the realistic busy ratios (pmu.py): cube 65 % (FlashAttention 60 %),
# memory pipes 65 %.
CUBE_EFFICIENCY, FA_EFFICIENCY, MEMORY_EFFICIENCY = 0.65, 0.6, 0.65
LAUNCH_FLOOR_US = 3.0

BF16, FP32 = "DT_BF16", "FLOAT"  # as CANN writes them (reference-advisor.md §1.8.4)
ACT = (f"{SEQ},1,{HIDDEN}", BF16)  # Megatron's [s, b, h] activations, micro-batch 1
QKV = (f"{SEQ},1,{HEADS},{HEAD_DIM}", BF16)
ROPE = (f"{SEQ},1,1,{HEAD_DIM}", BF16)
MASK = ("2048,2048", "BOOL")  # FlashAttention's compressed causal mask
_FILE = "/home/ma-user/work/MindSpeed-LLM/pretrain_gpt.py"
_MEGATRON = "/home/ma-user/work/MindSpeed-LLM/megatron"
_SITE = "/usr/local/python3.9/lib/python3.9/site-packages"

Tensors = tuple[tuple[str, str], ...]


def _kernel(
    kind: str, core: str, us: float, ins: Tensors, outs: Tensors, bound: str, acl: str
) -> KernelTemplate:
    """A kernel whose weight is its time in µs; `ins`/`outs` are (shape, dtype) per tensor."""
    block_dim = AI_CORE_NUM if core in ("AI_CORE", "MIX_AIC") else AIV_NUM
    joined = [";".join(t[i] for t in tensors) for tensors in (ins, outs) for i in (0, 1)]
    return KernelTemplate(kind, core, round(us, 3), *joined, bound, acl, block_dim)


def _vector(kind: str, nbytes: float, ins: Tensors, outs: Tensors, bound: str, acl: str) -> KernelTemplate:
    us = LAUNCH_FLOOR_US + nbytes / (HBM_BYTES_PER_S * MEMORY_EFFICIENCY) * 1e6
    return _kernel(kind, "AI_VECTOR_CORE", us, ins, outs, bound, acl)


def _cube(
    kind: str, flops: float, efficiency: float, ins: Tensors, outs: Tensors, acl: str
) -> KernelTemplate:
    us = LAUNCH_FLOOR_US + flops / (CUBE_FLOPS * efficiency) * 1e6
    return _kernel(
        kind, "MIX_AIC" if kind.startswith("FlashAttention") else "AI_CORE", us, ins, outs, "mac", acl
    )


def _fwd_stack(module: str, line: int) -> str:
    return _stack(
        f"{_MEGATRON}/core/{module}.py({line}): forward",
        f"{_MEGATRON}/core/transformer/transformer_block.py(456): forward",
        f"{_MEGATRON}/training/training.py(612): forward_step",
        f"{_FILE}(183): forward_step",
    )


_BWD_STACK = _stack(
    f"{_SITE}/torch/autograd/__init__.py(251): backward",
    f"{_MEGATRON}/core/pipeline_parallel/schedules.py(286): backward_step",
)


def _fwd(name: str, kernels: list[KernelTemplate], stack: str, inner: str | None = None) -> OpTemplate:
    return _op(name, inner, "forward", kernels, stack)


def _grad(node: str, inner: str, kernels: list[KernelTemplate]) -> OpTemplate:
    return _op(f"autograd::engine::evaluate_function: {node}", inner, "backward", kernels, _BWD_STACK)


def _rms_norm(stack: str) -> tuple[OpTemplate, OpTemplate]:
    rstd = (f"{SEQ},1,1", FP32)
    gamma = (str(HIDDEN), BF16)
    size = SEQ * HIDDEN * 2
    forward = _fwd(
        "npu::npu_rms_norm",
        [_vector("RmsNorm", 2 * size, (ACT, gamma), (ACT, rstd), "mte3", "aclnnRmsNorm")],
        stack,
    )
    backward = _grad(
        "NpuRmsNormBackward0",
        "npu::npu_rms_norm_backward",
        [
            _vector(
                "RmsNormGrad",
                3 * size,
                (ACT, ACT, rstd, gamma),
                (ACT, (str(HIDDEN), FP32)),
                "vec",
                "aclnnRmsNormGrad",
            ),
            # The residual stream's two gradients meet here: autograd accumulates them with an add.
            _vector("Add", 3 * size, (ACT, ACT), (ACT,), "mte3", "aclnnAdd"),
        ],
    )
    return forward, backward


def _linear(k: int, n: int, stack: str) -> tuple[OpTemplate, OpTemplate]:
    """A projection: Megatron keeps weights [out, in], so MatMulV2's second input is n x k."""
    flops = 2 * SEQ * k * n
    x, w, y = (f"{SEQ},{k}", BF16), (f"{n},{k}", BF16), (f"{SEQ},{n}", BF16)
    forward = _fwd(
        "aten::linear",
        [_cube("MatMulV2", flops, CUBE_EFFICIENCY, (x, w), (y,), "aclnnMatmul")],
        stack,
        "aten::matmul",
    )
    # dX = dY W and dW = dY^T X: each the forward's FLOPs.
    backward = _grad(
        "MmBackward0",
        "aten::mm",
        [
            _cube("MatMulV2", flops, CUBE_EFFICIENCY, (y, w), (x,), "aclnnMm"),
            _cube("MatMulV2", flops, CUBE_EFFICIENCY, ((f"{n},{SEQ}", BF16), x), (w,), "aclnnMm"),
        ],
    )
    return forward, backward


def _layer() -> tuple[list[OpTemplate], list[OpTemplate]]:
    """One transformer layer: its forward ops and its backward ops in execution order."""
    attention, mlp = _fwd_stack("transformer/attention", 315), _fwd_stack("transformer/mlp", 139)
    norm1, norm1_grad = _rms_norm(attention)
    qkv_fwd, qkv_grad = _linear(HIDDEN, 3 * HIDDEN, attention)
    rope_bytes = 2 * SEQ * HIDDEN * 2 + 2 * SEQ * HEAD_DIM * 2
    rotary = [
        _fwd(
            "npu::npu_rotary_mul",
            [
                _vector(
                    "RotaryPositionEmbedding",
                    rope_bytes,
                    (QKV, ROPE, ROPE),
                    (QKV,),
                    "mte3",
                    "aclnnRotaryPositionEmbedding",
                )
            ],
            attention,
        )
        for _ in "qk"
    ]
    rotary_grad = [
        _grad(
            "NpuRotaryMulBackward0",
            "npu::npu_rotary_mul_backward",
            [
                _vector(
                    "RotaryPositionEmbeddingGrad",
                    rope_bytes,
                    (QKV, ROPE, ROPE),
                    (QKV,),
                    "mte3",
                    "aclnnRotaryPositionEmbeddingGrad",
                )
            ],
        )
        for _ in "kq"
    ]
    # Causal attention: 4 s^2 h FLOPs halved by the mask; the backward does 2.5x the forward's work.
    fa_flops = 2 * SEQ * SEQ * HIDDEN
    stats = (f"1,{HEADS},{SEQ},8", FP32)
    attention_fwd = _fwd(
        "npu::npu_fusion_attention",
        [
            _cube(
                "FlashAttentionScore",
                fa_flops,
                FA_EFFICIENCY,
                (ACT, ACT, ACT, MASK),
                (stats, stats, ACT),
                "aclnnFlashAttentionScore",
            )
        ],
        attention,
    )
    attention_grad = _grad(
        "NpuFusionAttentionBackward0",
        "npu::npu_fusion_attention_grad",
        [
            _cube(
                "FlashAttentionScoreGrad",
                2.5 * fa_flops,
                FA_EFFICIENCY,
                (ACT, ACT, ACT, ACT, MASK),
                (ACT, ACT, ACT),
                "aclnnFlashAttentionScoreGrad",
            )
        ],
    )
    proj_fwd, proj_grad = _linear(HIDDEN, HIDDEN, attention)
    residual = _fwd_stack("transformer/transformer_layer", 224)
    adds = [
        _fwd(
            "aten::add",
            [_vector("Add", 3 * SEQ * HIDDEN * 2, (ACT, ACT), (ACT,), "mte3", "aclnnAdd")],
            residual,
        )
        for _ in "ab"
    ]
    norm2, norm2_grad = _rms_norm(mlp)
    up_fwd, up_grad = _linear(HIDDEN, 2 * FFN, mlp)
    gate_up, hidden = (f"{SEQ},1,{2 * FFN}", BF16), (f"{SEQ},1,{FFN}", BF16)
    swiglu_bytes = SEQ * 3 * FFN * 2
    swiglu = _fwd(
        "npu::npu_swiglu", [_vector("SwiGlu", swiglu_bytes, (gate_up,), (hidden,), "vec", "aclnnSwiGlu")], mlp
    )
    swiglu_grad = _grad(
        "NpuSwigluBackward0",
        "npu::npu_swiglu_backward",
        [_vector("SwiGluGrad", 2 * swiglu_bytes, (hidden, gate_up), (gate_up,), "vec", "aclnnSwiGluGrad")],
    )
    down_fwd, down_grad = _linear(FFN, HIDDEN, mlp)
    forward = [
        norm1,
        qkv_fwd,
        *rotary,
        attention_fwd,
        proj_fwd,
        adds[0],
        norm2,
        up_fwd,
        swiglu,
        down_fwd,
        adds[1],
    ]
    backward = [
        down_grad,
        swiglu_grad,
        up_grad,
        norm2_grad,
        proj_grad,
        attention_grad,
        *rotary_grad,
        qkv_grad,
        norm1_grad,
    ]
    return forward, backward


def _optimizer(params: int) -> tuple[OpTemplate, ...]:
    """NpuFusedAdamW's step on the combined fp32 buffers: weight decay, both moments, the update."""
    flat = (str(params), FP32)
    stack = _stack(
        f"{_SITE}/torch_npu/optim/npu_fused_adamw.py(197): _group_step",
        f"{_MEGATRON}/core/optimizer/optimizer.py(461): step",
    )
    steps = (  # (aten op, kernel type, aclnn API, fp32 tensors read + written)
        ("aten::mul_", "Muls", "aclnnInplaceMuls", 2),
        ("aten::mul_", "Muls", "aclnnInplaceMuls", 2),
        ("aten::add_", "Axpy", "aclnnInplaceAdd", 3),
        ("aten::mul_", "Muls", "aclnnInplaceMuls", 2),
        ("aten::addcmul_", "Addcmul", "aclnnInplaceAddcmul", 4),
        ("aten::sqrt", "Sqrt", "aclnnSqrt", 2),
        ("aten::div", "Divs", "aclnnDivs", 2),
        ("aten::add_", "Adds", "aclnnInplaceAdds", 2),
        ("aten::addcdiv_", "Addcdiv", "aclnnInplaceAddcdiv", 4),
    )
    return tuple(
        _op(
            name,
            None,
            "optimizer",
            [_vector(kind, n * 4 * params, (flat,) * (n - 1), (flat,), "mte3", acl)],
            stack,
        )
        for name, kind, acl, n in steps
    )


def parameters(layers: int, first: bool, last: bool) -> int:
    """Parameters of a model slice: its layers, the embedding (first) and final norm + LM head (last)."""
    return layers * LAYER_PARAMS + EMBEDDING_PARAMS * first + (EMBEDDING_PARAMS + HIDDEN) * last


def build_llm(layers: int, first: bool = True, last: bool = True, shards: int = 1) -> Model:
    """`layers` transformer layers; `first` adds the embedding, `last` the final norm, LM head and loss
    (a pipeline stage holds a slice of the model). Megatron's distributed optimizer gives each of the
    `shards` data-parallel ranks 1/shards of the parameters to update."""
    forward: list[OpTemplate] = []
    backward: list[tuple[OpTemplate, ...]] = []
    table, tokens = (f"{VOCAB},{HIDDEN}", BF16), (f"1,{SEQ}", "INT64")
    if first:
        stack = _fwd_stack("models/common/embeddings/language_model_embedding", 103)
        embed = _vector(
            "GatherV2",
            2 * SEQ * HIDDEN * 2,
            (table, tokens),
            ((f"1,{SEQ},{HIDDEN}", BF16),),
            "mte3",
            "aclnnEmbedding",
        )
        forward.append(_fwd("aten::embedding", [embed], stack))
    for _ in range(layers):
        layer_fwd, layer_bwd = _layer()
        forward += layer_fwd
        backward.insert(0, tuple(layer_bwd))
    if last:
        stack = _fwd_stack("models/gpt/gpt_model", 248)
        norm, norm_grad = _rms_norm(stack)
        logits_fwd, logits_grad = _linear(HIDDEN, VOCAB, stack)
        logits, labels, loss = (f"{SEQ},1,{VOCAB}", FP32), (f"{SEQ}", "INT64"), (";", f"{FP32};{FP32}")
        size = SEQ * VOCAB * 4
        forward += [
            norm,
            logits_fwd,
            _fwd(
                "aten::cross_entropy_loss",
                [
                    _vector("LogSoftmaxV2", 2 * size, (logits,), (logits,), "vec", "aclnnLogSoftmax"),
                    _vector("NLLLoss", size, (logits, labels), (loss,), "vec", "aclnnNLLLoss"),
                ],
                stack,
                "aten::_log_softmax",
            ),
        ]
        backward.insert(
            0,
            (
                _grad(
                    "NllLossBackward0",
                    "aten::nll_loss_backward",
                    [
                        _vector(
                            "NLLLossGrad", size, (logits, labels), (logits,), "vec", "aclnnNLLLossBackward"
                        )
                    ],
                ),
                _grad(
                    "LogSoftmaxBackward0",
                    "aten::_log_softmax_backward_data",
                    [
                        _vector(
                            "LogSoftmaxGrad",
                            3 * size,
                            (logits, logits),
                            (logits,),
                            "vec",
                            "aclnnLogSoftmaxBackward",
                        )
                    ],
                ),
                logits_grad,
                norm_grad,
            ),
        )
    if first:
        grad = _vector(
            "EmbeddingDenseGrad",
            EMBEDDING_PARAMS * 4 + SEQ * HIDDEN * 2,
            ((f"1,{SEQ},{HIDDEN}", BF16), tokens),
            ((table[0], FP32),),
            "mte3",
            "aclnnEmbeddingDenseBackward",
        )
        backward.append((_grad("EmbeddingBackward0", "aten::embedding_dense_backward", [grad]),))
    return Model(
        forward=tuple(forward),
        backward=tuple(backward),
        optimizer=_optimizer(parameters(layers, first, last) // shards),
        optimizer_name="Optimizer.step#NpuFusedAdamW.step",
        layer_ops=12,
        weights_us=True,
        activation=("aten::linear", "MatMulV2", "MatMulV2"),
    )
