"""Noise as a first-class object: a device's calibrated noise, scaled per source.

``qkit.noise.model`` builds, from a backend's calibration, the channel that follows every
instruction (depolarizing and thermal relaxation, as Aer builds them) and the readout error
of every qubit, with a scale per source (``gate``, ``readout``, ``relaxation``); the
``density`` engine (``qkit.engines.density``) evaluates circuits under it, and the same
object gives the Aer noise model that proves that engine right.
"""

from qkit.noise.model import SOURCES, DeviceNoise, NoiseScales, device_noise

__all__ = ["SOURCES", "DeviceNoise", "NoiseScales", "device_noise"]
