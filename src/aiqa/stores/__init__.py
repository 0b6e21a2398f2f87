"""Where index versions live: the Store interface (base.py), its backends, and the registry that picks one."""
