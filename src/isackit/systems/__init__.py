"""The five seed systems (S0–S4), assembled from the library layers."""
