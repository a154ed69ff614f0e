"""Model weights for clinserve: fetch the packaged default model, locate models, build test models.

Nothing here may be imported by the gateway (`server`): the gateway never loads weights, it
hands a model directory to a vLLM worker. Heavy libraries (torch, transformers, tokenizers) are
imported inside the functions that need them so `clinserve model path` stays instant.
"""
