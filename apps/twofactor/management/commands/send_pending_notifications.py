"""`python manage.py send_pending_notifications`: send the security emails still pending.

An email is sent when its event's transaction commits; when the mail server was down then, it
stays pending until this runs (the Kubernetes CronJob and the compose service run it every few
minutes). Safe to run while requests send theirs: each mail goes out once.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.twofactor import notifications


class Command(BaseCommand):
    help = "Send the security-event emails that are still pending (the mail server was down)."

    def handle(self, *args, **options) -> None:
        delivery = notifications.send_pending()
        self.stdout.write(f"Sent {delivery.sent} pending notification(s).")
        if delivery.failed:
            # Non-zero exit, so the CronJob shows the mail server still refuses them.
            raise CommandError(
                f"{delivery.failed} notification(s) could not be sent and stay pending."
            )
