"""Re-encode avatars stored as uploaded: same picture, a fresh WebP under a random name.

The avatar route serves only files ``users.avatars`` wrote, so an avatar stored
as sent (any extension, any bytes after the image) would stop showing. Each one
is re-encoded as a new upload is; one that is no longer a readable image is
dropped (the profile shows its placeholder). The old files are deleted once
this migration has committed.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import migrations, transaction

from users.avatars import AVATAR_FOLDER, STORED_NAME, avatar_encode


def reencode_avatars(apps: Any, schema_editor: Any) -> None:
    Profile = apps.get_model("users", "Profile")
    for profile in Profile.objects.exclude(avatar="").iterator():
        old = profile.avatar.name
        if STORED_NAME.fullmatch(old.removeprefix(f"{AVATAR_FOLDER}/")):
            continue
        storage = profile.avatar.storage
        try:
            with storage.open(old, "rb") as stored:
                encoded = avatar_encode(stored)
        except (ValidationError, OSError):
            profile.avatar = ""
        else:
            profile.avatar.save(encoded.name, encoded, save=False)
        profile.save(update_fields=["avatar"])
        transaction.on_commit(lambda name=old, storage=storage: storage.delete(name))


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_loginlockout_profile_securityevent"),
    ]

    operations = [
        migrations.RunPython(reencode_avatars, migrations.RunPython.noop, elidable=True),
    ]
