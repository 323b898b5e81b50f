# YOLOX-L as mmdet ships it (published AP: parnet_det/benchmark/published.py).
# The benchmark builds it with random weights, folded like every model, under the same controlled workload.
_base_ = 'mmdet::yolox/yolox_l_8xb8-300e_coco.py'
