"""Real test servers (Dovecot, aiosmtpd) and helpers shared by tests and benchmarks."""
