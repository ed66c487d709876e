"""Outgoing mail: who may send from what, drafts, the outbox and delivery over SMTP."""
