"""Explaining a trained run: what the model looks at, and how the quantum layer arranges the data.

``cam`` finds each backbone's last convolutional block and computes class-activation maps
with pytorch-grad-cam through the whole hybrid; ``select`` chooses images by outcome;
``figures`` draws the heatmap grid; ``quantum`` and ``quantum_figures`` describe the quantum
feature space (outputs, Bloch vectors, separability); ``heatmaps`` ties them to a run folder
(``explain_heatmaps``, ``explain_quantum``). Importing this package imports nothing heavy.
"""
