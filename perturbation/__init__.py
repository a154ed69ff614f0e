"""Perturbation-aware intake: how patients really write, detected, corrected and structured.

Import the parts you need (`perturbation.engine`, `perturbation.synthesizer`, ...); this
package's `__init__` stays empty so the gateway pays only for what it uses.
"""
