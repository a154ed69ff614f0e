"""The clinserve gateway: an OpenAI-compatible FastAPI front for a pool of vLLM workers."""
