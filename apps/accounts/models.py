"""People who log in. The custom User exists from the first migration so it can grow later."""

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person: staff in the admin, or a user of the mobile app and the browser pages."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
