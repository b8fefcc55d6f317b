"""The WSGI entry point for gunicorn: `gunicorn otpservice.wsgi:app`.

A refused configuration prints its one line and leaves with gunicorn's "app failed to load" status: a master
that preloads exits with it, and one whose workers load the app stops instead of restarting them forever.
"""
from otpservice import config, create_app
from otpservice.observability import logs

APP_LOAD_ERROR = 4  # gunicorn's Arbiter.APP_LOAD_ERROR

with config.or_exit(APP_LOAD_ERROR):
    settings = config.Settings.from_env()
    logs.configure(settings.log_level)
    app = create_app(settings)
