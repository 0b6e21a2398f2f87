"""The embedding model: the Embedder interface (base.py), one module per runtime, and the registry that loads one."""
