"""The local Telnyx simulator: the Messaging API v2, signed webhooks, fault injection and an outbox."""

from otpservice.sandbox.recorder import WebhookRecorder
from otpservice.sandbox.server import SimulatorServer
from otpservice.sandbox.simulator import create_sim_app

__all__ = ["SimulatorServer", "WebhookRecorder", "create_sim_app"]
