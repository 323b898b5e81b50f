from .yolov4_csp_loss import YOLOv4CSPLoss, complete_iou

__all__ = ['YOLOv4CSPLoss', 'complete_iou']
