"""Everything that speaks to a provider, behind one Sender protocol (sending/base.py)."""
