# Deliberately empty: the benchmark passes every gunicorn setting on the command line (see bench/run.py),
# so that a gunicorn.conf.py elsewhere in the tree cannot change what the service and the floor run with.
