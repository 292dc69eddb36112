"""lastgang: correct, explainable electricity bills from meter data.

The package follows E-Control's *TOR Stromzähler* and the smart-me measurement concepts. The
pipeline runs one way: raw archive -> readings -> 15-minute load profiles (Lastgang) -> concept
(inverted and virtual meters) -> allocation of local production -> pricing -> invoices.

Core modules (``ids``, ``obis``, ``timegrid``, ``quality``, ``profiles``, ``concept``,
``allocation``, ``pricing``) are pure; ``store``, ``ingest``, ``report`` and ``cli`` are the edges.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
