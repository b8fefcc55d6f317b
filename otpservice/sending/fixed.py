"""A sender that sends nothing: test numbers (OTP_TEST_NUMBERS) have a fixed code and never reach a provider."""
from __future__ import annotations

from otpservice import vocabulary
from otpservice.sending.base import OutboundMessage, SentMessage


class FixedCodeSender:
    """Accepts every message and sends none: the code was fixed beforehand, so there is nothing to deliver."""

    def send(self, message: OutboundMessage, *, deadline: float | None = None) -> SentMessage:
        return SentMessage(message_id=None, status=vocabulary.DELIVERED, route=message.route)
