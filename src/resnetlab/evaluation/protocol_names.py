"""The names of the testing protocols and the multi-scale sizes, without torch: the command line
lists them in ``--help`` (``evaluation/views.py`` and ``evaluation/protocols.py`` implement them)."""

PROTOCOLS = ("single", "1crop", "10crop", "multiscale")
MULTISCALE_SIZES = (224, 256, 384, 480, 640)  # Sec. 3.4: shorter side of each scale

__all__ = ["MULTISCALE_SIZES", "PROTOCOLS"]
