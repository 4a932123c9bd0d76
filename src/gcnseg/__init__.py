"""gcnseg: semantic segmentation with Global Convolutional Networks (Peng et al., 2017)."""

__version__ = "0.1.0"
