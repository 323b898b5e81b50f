# entry point: this name is the one README.md, the tools and work_dirs/ use; the config is its family's.
_base_ = './yolor/yolor_parnet-xl_reduced-csp-pan_8xb8-300e_coco.py'
