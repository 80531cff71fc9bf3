"""The built-in experiment plug-ins (one module per experiment, its figures beside it)."""
