"""Datasets as uint8 ``ImageArrays``: official CIFAR releases, image folders, a synthetic set."""

from .arrays import ImageArrays
from .cifar import load_cifar
from .datasets import describe_dataset, load_dataset, train_val_split
from .download import download_cifar
from .folder import load_image_folder
from .preprocess import Preprocess
from .synthetic import synthetic_cifar

__all__ = [
    "ImageArrays",
    "Preprocess",
    "describe_dataset",
    "download_cifar",
    "load_cifar",
    "load_dataset",
    "load_image_folder",
    "synthetic_cifar",
    "train_val_split",
]
