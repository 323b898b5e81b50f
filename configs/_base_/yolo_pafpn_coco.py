# The one YOLO-style detector recipe every backbone of this project is compared under:
# mmdet's YOLOX-L neck (PAFPN, 256 channels, 3 CSP blocks), decoupled anchor-free head with
# SimOTA, and YOLOX's COCO schedule (300 epochs, mosaic + mixup, EMA, 640 px, 8 GPUs x 8 images).
# A backbone config sets `model.backbone` (with _delete_=True) and `model.neck`: the ParNet configs use
# ReducedYOLOXPAFPN (1x1 convs to 256/512/1024, then this PAFPN), the baseline sets `in_channels`.
_base_ = 'mmdet::yolox/yolox_l_8xb8-300e_coco.py'

custom_imports = dict(imports=['parnet_det'], allow_failed_imports=False)

img_scale = (640, 640)  # width, height
data_root = 'data/coco/'
# mmdet's CocoDataset, reporting the boxes it drops (see parnet_det/datasets/checked_coco.py).
dataset_type = 'CheckedCocoDataset'
backend_args = None

train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            pipeline=[
                # Training skips an unreadable image with a warning naming it.
                dict(type='CheckedLoadImageFromFile', on_error='skip', backend_args=backend_args),
                dict(type='LoadAnnotations', with_bbox=True)
            ])))

test_pipeline = [
    # Evaluation stops on an unreadable image: skipping it would change the AP.
    # (on_error='raise' is the default; left implicit so that mmdet.apis.inference_detector, which
    # swaps this step for LoadImageFromNDArray and keeps its arguments, works with these configs.)
    dict(type='CheckedLoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
