"""Fast inference: pre-processing on the device, fast paths for the network, batched NMS."""
from .dense_network import DenseDetectorNetwork
from .engine import DetectorEngine, init_detector_engine, set_parallel_streams
from .cuda_graph import CUDAGraphRunner
from .fast_paths import FAST_PATH_NAMES, PRECISION_DTYPES, InferenceOptions
from .nms import postprocess_dense_detections
from .preprocess import BatchPreprocessor, PreprocessSettings, per_channel, read_image

__all__ = [
    'DenseDetectorNetwork', 'DetectorEngine', 'init_detector_engine', 'set_parallel_streams', 'FAST_PATH_NAMES',
    'PRECISION_DTYPES', 'CUDAGraphRunner', 'InferenceOptions', 'postprocess_dense_detections',
    'BatchPreprocessor', 'PreprocessSettings', 'per_channel', 'read_image'
]
