"""The only Flask package besides sandbox/: views that parse, call one domain function, and render."""
