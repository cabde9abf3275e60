"""cortical_gle: Generalized Latent Equilibrium (Ellenberger et al. 2026) on three engines."""
from .spec import LayerSpec, NetworkSpec
from .phi import get_phi
from .engines import get_engine, available_engines

__version__ = "0.1.0"
__all__ = ["LayerSpec", "NetworkSpec", "get_phi", "get_engine", "available_engines", "__version__"]
