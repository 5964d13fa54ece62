"""evaluering: evaluate Danish free-municipality trials on the employment area.

Layers (see ARCHITECTURE.md): ingest → outcomes → panels → estimators → inference → report,
with the CLI and notebooks on top.
"""

__version__ = "0.1.0"
