from ..models.reparameterize import fold_conv_module_norms, switch_to_deploy
from .calibration import DEFAULT_CALIBRATION_IMAGES, calibration_images, check_calibration_data
from .onnx_check import OnnxCheck, check_onnx_against_pytorch
from .onnx_export import OnnxExport, OnnxExportWrapper, export_onnx
from .quantize import INT8_SCOPES, KEEP_FLOAT, Int8Options, QuantizedGraph, quantize_graph
from .reparameterize import reparameterize_checkpoint
from .runtime_detector import RuntimeDetector, RuntimeParity
from .runtimes import (
    PRECISIONS,
    RUNTIMES,
    SESSION_OPTIONS,
    RuntimeSession,
    RuntimeVariant,
    open_session,
    runtime_missing,
)

__all__ = [
    'DEFAULT_CALIBRATION_IMAGES', 'INT8_SCOPES', 'KEEP_FLOAT', 'PRECISIONS', 'RUNTIMES', 'SESSION_OPTIONS',
    'Int8Options', 'OnnxCheck', 'OnnxExport', 'OnnxExportWrapper', 'QuantizedGraph', 'RuntimeDetector',
    'RuntimeParity', 'RuntimeSession', 'RuntimeVariant', 'calibration_images', 'check_calibration_data',
    'check_onnx_against_pytorch', 'export_onnx', 'fold_conv_module_norms', 'open_session', 'quantize_graph',
    'reparameterize_checkpoint', 'runtime_missing', 'switch_to_deploy'
]
