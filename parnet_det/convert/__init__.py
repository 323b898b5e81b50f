from .official_parnet import ConversionError, convert_official, infer_arch, load_official_state_dict, map_official_key

__all__ = ['ConversionError', 'convert_official', 'infer_arch', 'load_official_state_dict', 'map_official_key']
