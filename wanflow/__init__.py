"""wanflow: declarative, cached, concurrent pipelines for Wan video generation."""

__version__ = "0.1.0"
