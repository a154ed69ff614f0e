"""Training: LoRA SFT/CPT, reward model, GRPO, CPO-SimPO, and the adapter manifest.

Kept free of imports: the gateway imports `training.manifest` (the contract between training
and serving) and must not pull trainers or models in with it.
"""
