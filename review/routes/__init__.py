"""One router per area of the app: sign-in, queue, flags, dashboard, admin."""
