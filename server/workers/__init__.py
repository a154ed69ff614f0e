"""The pool of vLLM workers: health, selection, forwarding and the managed local worker."""
