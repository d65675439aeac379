"""resnetlab: Deep Residual Learning for Image Recognition (He et al., 2016) in PyTorch."""

__version__ = "0.1.0"
