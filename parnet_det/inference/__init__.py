"""Fast inference: pre-processing on the device, fast paths for the network, batched NMS."""
from .cuda_graph import CUDAGraphRunner
from .dense_network import DenseDetectorNetwork
from .engine import DetectorEngine, as_data_samples, set_parallel_streams
from .fast_paths import FAST_PATH_NAMES, PRECISION_DTYPES, InferenceOptions
from .media import VideoFrames, check_outputs, is_video, list_media
from .nms import dense_postprocess, postprocess_dense_detections, postprocess_multilabel_detections
from .preprocess import BatchPreprocessor, PreprocessSettings, per_channel, read_image

__all__ = [
    'DenseDetectorNetwork', 'DetectorEngine', 'as_data_samples', 'set_parallel_streams', 'FAST_PATH_NAMES',
    'PRECISION_DTYPES', 'CUDAGraphRunner', 'InferenceOptions', 'postprocess_dense_detections',
    'postprocess_multilabel_detections', 'dense_postprocess',
    'BatchPreprocessor', 'PreprocessSettings', 'per_channel', 'read_image', 'VideoFrames', 'check_outputs', 'is_video',
    'list_media'
]
