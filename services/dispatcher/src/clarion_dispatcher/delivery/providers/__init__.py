"""Provider clients (SMTP, FCM, APNs, Twilio, WhatsApp Cloud, HTTP), one interface."""
