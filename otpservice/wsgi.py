"""The WSGI entry point for gunicorn: `gunicorn otpservice.wsgi:app`."""
from otpservice import create_app, logs
from otpservice.config import Settings

settings = Settings.from_env()
logs.configure(settings.log_level)
app = create_app(settings)
