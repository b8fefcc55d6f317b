"""The WSGI entry point for gunicorn: `gunicorn otpservice.wsgi:app`."""
from otpservice import create_app
from otpservice.config import Settings
from otpservice.observability import logs

settings = Settings.from_env()
logs.configure(settings.log_level)
app = create_app(settings)
