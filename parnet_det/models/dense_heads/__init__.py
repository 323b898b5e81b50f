from .yolov4_csp_head import (
    YOLOV4_CSP_ANCHORS,
    YOLOV4_CSP_TEST_CFG,
    YOLOv4CSPHead,
    boxes_to_image,
    clip_to,
    select_detections,
)

__all__ = [
    'YOLOV4_CSP_ANCHORS', 'YOLOV4_CSP_TEST_CFG', 'YOLOv4CSPHead', 'boxes_to_image', 'clip_to', 'select_detections'
]
