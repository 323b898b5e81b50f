# entry point: this name is the one README.md, the tools and work_dirs/ use; the config is its family's.
_base_ = './yolox/yolox_parnet-l_reduced-pafpn_8xb8-300e_coco.py'
