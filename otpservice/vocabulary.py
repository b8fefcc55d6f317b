"""The closed sets of words that several layers share, each defined once.

The domain emits these words, storage writes them to Redis and passes them to the Lua scripts, metrics use
them as label values and the OpenAPI document as enums. Nothing else spells them: a word missing here is a
word nobody can count, document or store consistently. tests/unit/test_vocabulary.py holds the Lua scripts
and the emitters to these sets.
"""
from __future__ import annotations

# -- deliveries ------------------------------------------------------------------------------------------
# A send's delivery status moves forward only: queued < sending < sent < any terminal status, and a terminal
# status is final (providers retry, duplicate and reorder their receipts).
PROGRESS_STATUSES = ("queued", "sending", "sent")
TERMINAL_STATUSES = ("delivered", "sending_failed", "delivery_failed", "delivery_unconfirmed", "expired")
UNKNOWN_STATUS = "unknown"  # the provider never answered the send: the text may or may not arrive
DELIVERED = "delivered"
DELIVERY_STATUSES = (*PROGRESS_STATUSES, *TERMINAL_STATUSES, UNKNOWN_STATUS)
# Where a receipt may move a status from: the rank of every status a receipt can carry.
DELIVERY_RANK = {**{status: rank for rank, status in enumerate(PROGRESS_STATUSES)},
                 **dict.fromkeys(TERMINAL_STATUSES, len(PROGRESS_STATUSES))}
# A latest send that ended in one of these lets the next request skip the resend cooldown.
FAILED_DELIVERY_STATUSES = ("sending_failed", "delivery_failed", "expired")

# -- verifications ---------------------------------------------------------------------------------------
VERIFICATION_STATUSES = ("pending", "approved", "expired", "max_attempts_reached", "canceled", "failed")
CHANNELS = ("sms", "totp", "whatsapp")
SMS = "sms"
TOTP = "totp"
WHATSAPP = "whatsapp"
SEND_CHANNELS = (SMS, WHATSAPP)  # the channels a code is sent over (/request-code's `channel`)
# An authenticator factor waits for its first code, then is a credential.
FACTOR_STATUSES = ("unconfirmed", "confirmed")
# Telnyx's send endpoints: POST /v2/messages (a sender of ours), /v2/messages/number_pool (a profile's pool) and
# /v2/messages/whatsapp (an authentication template from a WhatsApp-enabled number of ours).
ENDPOINTS = ("messages", "number_pool", "whatsapp")
SMS_ENDPOINTS = ("messages", "number_pool")
ENDPOINT_CHANNELS = {"messages": SMS, "number_pool": SMS, "whatsapp": WHATSAPP}
# What one code check decided (the verify script's answer, the metric's label).
VERIFY_RESULTS = ("approved", "wrong", "not_found", "max_attempts", "number_locked")

# -- refusals before a send ------------------------------------------------------------------------------
# The reason a code request was refused before anything was sent: the error code the caller gets.
# verification_blocked: the fraud guard (core/fraud.py); spend_limit_reached: a daily spend cap.
REFUSAL_REASONS = ("rate_limited", "opted_out", "country_not_allowed", "unsupported_number_type",
                   "verification_blocked", "spend_limit_reached")
# Which budget a `rate_limited` refusal hit (the error body's `limit`, the metric's `policy`).
# phone_number_failures: the number's wrong codes reached OTP_NUMBER_FAILURES_PER_DAY (no new code until the
# lock ends); verify_client_ip and admin_client_ip: a client's wrong codes, or failed admin authentications.
LIMIT_POLICIES = ("resend_cooldown", "phone_number", "phone_number_daily", "phone_number_failures", "client_ip",
                  "number_prefix", "country", "global", "verify_client_ip", "admin_client_ip")

# -- the fraud guard (core/fraud.py) --------------------------------------------------------------------
# OTP_FRAUD_GUARD: enforce refuses, shadow logs, counts and records what it would refuse and sends anyway.
FRAUD_MODES = ("enforce", "shadow", "off")
ENFORCE, SHADOW, OFF = FRAUD_MODES
# What a scope's conversion counts: texts the provider took, codes approved, deliveries that failed.
FRAUD_EVENTS = ("sent", "approved", "failed")
# The scopes a block is on: a number prefix (E.164 minus its last 4 digits), a country (ISO region), a sender
# route, and the caller's device and user (digests of the `device_id` and `user_id` it sent).
FRAUD_SCOPES = ("prefix", "country", "route", "device", "user")
# Why a scope was blocked: its conversion fell under OTP_FRAUD_MIN_CONVERSION over enough sends (a country's
# block refuses only its prefixes without a record of approved codes), or its requests passed their velocity.
FRAUD_RULES = ("prefix_conversion", "country_conversion", "route_conversion", "device_velocity", "user_velocity")
# The daily spend caps (the error's reason.scope is "spend:total" or "spend:<country>").
SPEND_SCOPES = ("total", "country")

# -- sends -----------------------------------------------------------------------------------------------
# How a hand-over to the provider ended, as metrics count it (unanswered: no definite answer in the deadline).
SEND_OUTCOMES = ("accepted", "unavailable", "unanswered", "opted_out", "invalid_number", "provider_error")
# What a send's result means for its verification (storage's send_result script):
#   sent: the provider took it; failed: surely not sent, the cooldown is given back;
#   uncertain: no answer, the text may arrive (code and cooldown kept); dead: nothing can ever reach the number.
SEND_RECORD_OUTCOMES = ("sent", "failed", "uncertain", "dead")
# Why a send moved on to the next route of its country: the provider refused the route's sender or profile
# (invalid_sender 40305, alpha_sender_not_configured 40306, profile_disabled 40312, pool_empty 40321), or the
# latest text on it was not delivered (the resend starts on the next route).
FAILOVER_REASONS = ("invalid_sender", "alpha_sender_not_configured", "profile_disabled", "pool_empty",
                    "delivery_failed")

# -- webhooks --------------------------------------------------------------------------------------------
WEBHOOK_KINDS = ("delivery", "inbound", "unhandled")  # unhandled: an event type the service does not act on
WEBHOOK_RESULTS = ("updated", "unchanged", "duplicate", "unknown_message", "ignored", "opted_out", "opted_in")
# Why a webhook's signature was refused: for logs and metrics only (the caller always gets invalid_signature).
SIGNATURE_FAILURES = ("no_key", "bad_key", "missing_header", "duplicate_header", "bad_timestamp", "stale", "future",
                      "bad_base64", "bad_length", "mismatch")
KEYWORDS = ("STOP", "START")

# -- opt-outs --------------------------------------------------------------------------------------------
OPT_OUT_SOURCES = ("inbound_stop", "telnyx", "send_rejected", "admin")

# -- the provider's API ----------------------------------------------------------------------------------
PROVIDER_OPERATIONS = ("send_message", "send_number_pool", "send_whatsapp", "list_opt_outs", "retrieve_message",
                       "list_messaging_numbers", "get_number_messaging", "get_messaging_profile")
PROVIDER_CALL_OUTCOMES = ("2xx", "4xx", "5xx", "timeout", "connection_error", "error")

# -- the store -------------------------------------------------------------------------------------------
# The redis-py error classes a failed call is counted under (anything else: `other`).
STORE_ERRORS = ("ConnectionError", "TimeoutError", "BusyLoadingError", "ReadOnlyError", "ClusterDownError",
                "TryAgainError", "ResponseError", "MovedError", "AskError", "MasterNotFoundError",
                "RedisClusterException", "NoScriptError", "NotReplicated")

# -- texts ----------------------------------------------------------------------------------------------
# The characters Telnyx sends as GSM-7 (developers.telnyx.com, "Message encoding": a "non-standard GSM 7-bit
# encoding optimized for carrier compatibility"; anything else makes the whole text UTF-16). It is narrower than
# GSM 03.38: no Ç, no Greek capitals, no ¤, no € or form feed. The page's two renderings disagree on §; it
# counts as UCS-2 here, the safe side of a one-segment promise. Every character here is in GSM 03.38, so the
# gsm03.38 codec counts their septets (core/segments.py, config's OTP_APP_NAME check, the simulator).
TELNYX_GSM7 = frozenset(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\r !\"#$%&'()*+,-./:;<=>?@[\\]^_{}|~"
    "£¥èéùìòØøÅåÆæßÉ¡ÄÖÑÜ¿äöñüà")
