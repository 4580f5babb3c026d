"""Messages that are really sent: the outbox sender, SMS/WhatsApp via Twilio, email via SMTP."""
