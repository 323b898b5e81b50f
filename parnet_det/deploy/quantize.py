"""INT8 post-training quantization of an exported graph, in the runtime that will run it.

    graph = quantize_graph('openvino', 'model.onnx', 'model.int8.xml', pixels)   # pixels: calibration batches
    session = open_session('openvino', graph.path)

What is quantized is the same in both runtimes: the convolutions (every ``Conv`` of the
graph, the folded ParNet blocks', the SSE gates' and the neck's and head's), weights int8
per output channel, activations 8-bit per tensor, calibrated on letterboxed val
images (:mod:`.calibration`). Everything else stays fp32: the normalisation, the activations
(SiLU, Mish, sigmoid), the SSE and skip products and sums, the BatchNorm of ParNet's identity
branch (it does not fold: its gate reads it), resizes, concatenations and the box decoding,
so that boxes keep their pixel precision. Per runtime (:data:`INT8_SCOPES`):

- ``onnxruntime``: ``onnxruntime.quantization.quantize_static``, QDQ format, ``Conv`` only,
  weights int8 (per channel by default), activations uint8 asymmetric at each conv's
  input and output, min-max calibration; ONNX Runtime fuses each DQ-Conv-Q into an int8 conv.
- ``openvino``: ``nncf.quantize`` on the CPU target with its default preset (symmetric int8),
  its fast bias correction, and every node other than a convolution and its bias addition in its
  ignored scope; the graph converted (``openvino.convert_model``) first, its constants folded.

Both are imported here only (:func:`~.onnx_export.require`). The remedies the issue names for
re-parameterised blocks are options (:class:`Int8Options`): convolutions kept in float
(:data:`KEEP_FLOAT`: the SSE gates, or the first and last convolutions), ONNX Runtime's
per-tensor weights against per-channel, and NNCF without bias correction. Measured on the
demo's trained detectors: ``docs/benchmarks/cpu_runtimes/int8.md``.
"""
import gc
import hashlib
import logging
import os
import os.path as osp
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from ..utils.fileio import PARTIAL_SUFFIX, create_temporary, file_sha256, publish
from .onnx_export import INPUT_NAME, require

# What is quantized and what stays float, per runtime, in one line each (docs, rows, tools' output).
INT8_SCOPES = {
    'onnxruntime': ('int8: every convolution (static QDQ; weights int8 per output channel, activations uint8 per '
                    'tensor at its input and output, min-max calibrated); fp32: normalisation, activations, SSE and '
                    'skip products and sums, the identity BatchNorm, resizes, concatenations, box decoding'),
    'openvino': ('int8: every convolution (NNCF, CPU target, default preset: weights int8 per output channel, '
                 'input activations int8 per tensor, fast bias correction); fp32: normalisation, activations, SSE '
                 'and skip products and sums, the identity BatchNorm, resizes, concatenations, box decoding'),
}
# Convolutions a remedy keeps in float: the name of the set -> what it holds.
KEEP_FLOAT = {
    'sse': "the SSE gates (ParNet's 1x1 convs on the pooled features, weights named se_gate)",
    'first_last': 'the first convolutions (reading the pixels) and the last (whose outputs reach no other conv: the '
                  'prediction convs)',
}
SUFFIXES = {'onnxruntime': '.onnx', 'openvino': '.xml'}


@dataclass(frozen=True)
class Int8Options:
    """How a graph is quantized.

    Args:
        keep_float (tuple[str]): Names of :data:`KEEP_FLOAT`: convolutions left in fp32.
        per_channel (bool): ONNX Runtime's weight scales per output channel (False: one per tensor). NNCF's are
            always per channel.
        bias_correction (bool): NNCF's fast bias correction (ONNX Runtime has none).
    """
    keep_float: Tuple[str, ...] = ()
    per_channel: bool = True
    bias_correction: bool = True

    def check(self) -> None:
        """Refuse, in one line, options that name nothing."""
        unknown = [name for name in self.keep_float if name not in KEEP_FLOAT]
        if unknown:
            raise ValueError(f'unknown float set(s) {", ".join(unknown)}; choose from {", ".join(KEEP_FLOAT)}')

    def describe(self, runtime: str) -> str:
        """The scope of :data:`INT8_SCOPES` and what these options change in it, in one line."""
        changes = [f'kept fp32: {KEEP_FLOAT[name]}' for name in self.keep_float]
        if runtime == 'onnxruntime' and not self.per_channel:
            changes.append('weights per tensor')
        if runtime == 'openvino' and not self.bias_correction:
            changes.append('no bias correction')
        return '; '.join([INT8_SCOPES[runtime], *changes])


@dataclass
class QuantizedGraph:
    """What :func:`quantize_graph` wrote.

    Args:
        path (str): The INT8 graph (ONNX with QDQ nodes, or OpenVINO IR ``.xml`` beside its ``.bin``).
        runtime (str): The runtime it is for.
        calibration_images (int): Images it was calibrated on.
        calibration_s (float): Seconds the calibration and quantization took (0 where it came from the cache).
        float_convs (list[str]): Convolutions kept in fp32 (graph node names).
        scope (str): What is quantized and what is not, in one line.
        cached (bool): Read from a cache folder, quantized before.
    """
    path: str
    runtime: str
    calibration_images: int
    calibration_s: float
    float_convs: List[str]
    scope: str
    cached: bool = False


def _conv_graph(onnx_path: str):
    """(the ONNX model, its Conv nodes in graph order, node name -> names of the nodes reading its outputs)."""
    onnx = require('onnx', 'INT8 quantization')
    model = onnx.load(onnx_path)
    readers: Dict[str, List[str]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            readers.setdefault(tensor, []).append(node.name)
    consumers = {node.name: [reader for tensor in node.output for reader in readers.get(tensor, [])]
                 for node in model.graph.node}
    return model, [node for node in model.graph.node if node.op_type == 'Conv'], consumers


def _reaches(start: str, targets: Set[str], edges: Dict[str, List[str]]) -> bool:
    """Whether a node of ``targets`` lies downstream of ``start`` along ``edges``."""
    seen, stack = set(), list(edges.get(start, []))
    while stack:
        name = stack.pop()
        if name in targets:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(edges.get(name, []))
    return False


def float_convs(onnx_path: str, keep_float: Sequence[str]) -> List[str]:
    """Names of the graph's Conv nodes that ``keep_float`` (names of :data:`KEEP_FLOAT`) leaves in fp32."""
    if not keep_float:
        return []
    model, convs, consumers = _conv_graph(onnx_path)
    names = {node.name for node in convs}
    producers: Dict[str, List[str]] = {}
    for name, readers in consumers.items():
        for reader in readers:
            producers.setdefault(reader, []).append(name)
    kept = set()
    if 'sse' in keep_float:
        kept |= {node.name for node in convs if '.se_gate.' in node.input[1]}
    if 'first_last' in keep_float:
        kept |= {name for name in names
                 if not _reaches(name, names, producers) or not _reaches(name, names, consumers)}
    return [node.name for node in convs if node.name in kept]


class _CalibrationReader:
    """ONNX Runtime's calibration data reader over the letterboxed batches."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self.batches = iter(batches)

    def get_next(self) -> Optional[dict]:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def _quantize_onnxruntime(onnx_path: str, out: str, batches: Sequence[np.ndarray], kept: List[str],
                          options: Int8Options) -> None:
    quantization = require('onnxruntime.quantization', 'INT8 quantization in onnxruntime')
    descriptor, partial = create_temporary(out)
    os.close(descriptor)
    # ONNX Runtime advises its pre-processing (shape inference, graph fusions) on the root logger; the graph is
    # already folded and its shapes known, so the advice is not printed.
    advice = _Without('pre-processing before quantization')
    logging.getLogger().addFilter(advice)
    try:
        quantization.quantize_static(
            onnx_path, partial, _CalibrationReader(batches), quant_format=quantization.QuantFormat.QDQ,
            op_types_to_quantize=['Conv'], per_channel=options.per_channel,
            activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=kept, calibrate_method=quantization.CalibrationMethod.MinMax)
        publish(partial, out)
    finally:
        logging.getLogger().removeFilter(advice)
        if osp.exists(partial):
            os.remove(partial)


class _Without(logging.Filter):
    """Drops the log records that contain ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def _openvino_ignored(model, kept: Sequence[str]) -> List[str]:
    """The nodes NNCF is to leave alone: every node but the convolutions and their bias additions (NNCF's bias
    correction updates those), and the convolutions of ``kept`` (ONNX node names). OpenVINO keeps an ONNX node's
    name as its node's, except that a Conv with a bias becomes a Convolution named ``<name>/WithoutBiases`` and an
    Add named ``<name>``."""
    convs = {op.get_friendly_name() for op in model.get_ordered_ops()
             if op.get_type_name() in ('Convolution', 'GroupConvolution')}
    biases = {op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == 'Add'
              and sorted(value.get_node().get_type_name() in ('Convolution', 'GroupConvolution', 'Constant')
                         for value in op.input_values()) == [True, True]}
    kept_convs = {name for name in convs if name.split('/WithoutBiases')[0] in kept}
    return [op.get_friendly_name() for op in model.get_ordered_ops()
            if op.get_friendly_name() not in (convs | biases) - kept_convs
            and op.get_type_name() not in ('Parameter', 'Result', 'Constant')]


def _quantize_openvino(onnx_path: str, out: str, batches: Sequence[np.ndarray], kept: List[str],
                       options: Int8Options) -> None:
    ov = require('openvino', 'INT8 quantization in openvino')
    nncf = require('nncf', 'INT8 quantization in openvino')
    nncf.set_log_level(logging.WARNING)  # not a line per node it leaves unquantized
    # Converted (constants folded), not read: NNCF's bias correction finds a conv's bias only as a constant.
    model = ov.convert_model(onnx_path)
    ignored = _openvino_ignored(model, kept)
    advanced = nncf.AdvancedQuantizationParameters(disable_bias_correction=not options.bias_correction)
    quantized = nncf.quantize(model, nncf.Dataset(list(batches)), subset_size=len(batches),
                              target_device=nncf.TargetDevice.CPU, fast_bias_correction=True,
                              ignored_scope=nncf.IgnoredScope(names=ignored, validate=False),
                              advanced_parameters=advanced)
    # NNCF compiled the model on a Core of its own for the statistics: released now, before any other Core
    # compiles, it gives back the signal stack it found (see runtimes.openvino_core).
    gc.collect()
    # The .xml names its .bin by its own name: both written in a private folder beside OUT, the .bin published
    # first, so that an .xml under its name always has its weights beside it.
    folder = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.', suffix=PARTIAL_SUFFIX, dir=osp.dirname(out))
    try:
        ov.save_model(quantized, osp.join(folder, 'model.xml'), compress_to_fp16=False)
        publish(osp.join(folder, 'model.bin'), osp.splitext(out)[0] + '.bin')
        publish(osp.join(folder, 'model.xml'), out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def quantize_graph(runtime: str, onnx_path: str, out: str, batches: Sequence[np.ndarray],
                   options: Int8Options = Int8Options()) -> QuantizedGraph:
    """Quantize the fp32 graph ``onnx_path`` for ``runtime`` on the calibration ``batches``; write it to ``out``.

    Args:
        runtime (str): 'onnxruntime' (``out`` an ``.onnx``) or 'openvino' (``out`` an ``.xml``, its ``.bin`` beside).
        onnx_path (str): A graph of :func:`~.onnx_export.export_onnx` (pixels in, boxes and scores out).
        out (str): Where the INT8 graph goes, through temporary files and renames.
        batches (Sequence[np.ndarray]): Letterboxed float32 pixel batches (B, 3, H, W), as the graph takes them.
        options (Int8Options): What to keep in float, and the runtime's choices.
    """
    options.check()
    if runtime not in SUFFIXES:
        raise ValueError(f'unknown runtime {runtime!r} for INT8; choose from {", ".join(SUFFIXES)}')
    if not out.endswith(SUFFIXES[runtime]):
        raise ValueError(f'{runtime} INT8 graphs are {SUFFIXES[runtime]} files, not {out}')
    if not batches:
        raise ValueError('INT8 calibration needs at least one image')
    start = time.perf_counter()
    kept = float_convs(onnx_path, options.keep_float)
    (_quantize_onnxruntime if runtime == 'onnxruntime' else _quantize_openvino)(onnx_path, out, batches, kept,
                                                                              options)
    return QuantizedGraph(path=out, runtime=runtime, calibration_images=len(batches),
                          calibration_s=time.perf_counter() - start, float_convs=kept,
                          scope=options.describe(runtime))


def cache_name(runtime: str, onnx_path: str, calibration_key: str, options: Int8Options) -> str:
    """The file name of a quantized graph in a cache folder: one per graph (its bytes), calibration set and
    options, so that another model, input size, calibration count or remedy never reads another's."""
    digest = hashlib.sha256('|'.join([file_sha256(onnx_path), calibration_key, repr(options)]).encode())
    return f'{runtime}_int8_{digest.hexdigest()[:16]}{SUFFIXES[runtime]}'
