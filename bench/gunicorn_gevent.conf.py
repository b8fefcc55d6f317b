# The benchmark's gevent runs: every setting still comes from bench/run.py's command line; this file only
# patches the standard library before the preloaded app is built, as config/gunicorn.conf.py does.
from gevent import monkey

monkey.patch_all()
