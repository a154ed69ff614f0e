"""LoRA adapters: validation, the registry's versions and states, and publishing."""
