from ..models.reparameterize import fold_conv_module_norms, switch_to_deploy
from .onnx_check import OnnxCheck, check_onnx_against_pytorch
from .onnx_export import OnnxExport, OnnxExportWrapper, export_onnx
from .reparameterize import reparameterize_checkpoint
from .runtime_detector import RuntimeDetector, RuntimeParity
from .runtimes import RUNTIMES, RuntimeSession, open_session, runtime_missing

__all__ = [
    'OnnxCheck', 'OnnxExport', 'OnnxExportWrapper', 'check_onnx_against_pytorch', 'export_onnx',
    'fold_conv_module_norms', 'reparameterize_checkpoint', 'switch_to_deploy', 'RUNTIMES', 'RuntimeDetector',
    'RuntimeParity', 'RuntimeSession', 'open_session', 'runtime_missing'
]
