# ParNet-XL, the official "ParNet-XL (200 epochs)" command: 200 epochs, --reprob 0.4. Paper: 78.55% top-1.
_base_ = './_base_/parnet_8xb128_in1k.py'
