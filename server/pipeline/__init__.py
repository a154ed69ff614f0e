"""The request path from validated body to answer, one stage per call, free of HTTP types."""
