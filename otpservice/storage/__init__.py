"""The only package that names Redis keys or runs Lua: one store per kind of state (storage/keys.py lists them)."""
