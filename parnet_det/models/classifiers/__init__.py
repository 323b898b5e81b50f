from .parnet_classifier import ParNetClassifier

__all__ = ['ParNetClassifier']
