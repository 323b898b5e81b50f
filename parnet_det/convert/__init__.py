from .darknet_yolov4_csp import DarknetWeightsError, convert_darknet
from .official_parnet import ConversionError, convert_official, infer_arch, load_official_state_dict, map_official_key

__all__ = ['ConversionError', 'DarknetWeightsError', 'convert_darknet', 'convert_official', 'infer_arch',
           'load_official_state_dict', 'map_official_key']
