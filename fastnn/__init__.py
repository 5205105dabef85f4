"""fastnn: a compact CPU engine for training dense neural networks and serving pruned ones."""
__version__ = "0.1.0"

from fastnn._config import config, get_num_threads, set_num_threads, show_config

__all__ = ["__version__", "config", "show_config", "get_num_threads", "set_num_threads"]
