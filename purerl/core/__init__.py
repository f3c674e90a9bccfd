"""Pieces shared by several algorithms, each written once."""
