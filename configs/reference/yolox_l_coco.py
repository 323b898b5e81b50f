# YOLOX-L as mmdet ships it: published box AP 49.4 on COCO val2017 (mmdet's configs/yolox/metafile.yml).
# The benchmark builds it with random weights, folded like every model, under the same controlled workload.
_base_ = 'mmdet::yolox/yolox_l_8xb8-300e_coco.py'
