"""Evaluation: multiple-choice and robustness runs against any OpenAI-compatible endpoint.

The benchmark sets (one JSONL shape, see /work/shared/data/benchmarks/README.md) are loaded
and validated, optionally subset and option-shuffled with a fixed seed, put to a model (our
gateway, a bare vLLM worker or another provider), and scored with confidence intervals; the
robustness run compares the same items clean and perturbed. Results are JSON, a Markdown
report and plots.

Kept free of imports, like the other packages: `clinserve eval` imports only the modules it
needs, and nothing here may pull in the gateway, torch or a trainer.
"""
