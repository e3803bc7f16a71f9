"""Engines evaluate a QuantumLayer's circuit; see ``qkit.engines.base`` for the interface."""
