"""What each kind of email says: one builder per kind turns database rows into :class:`EmailJob`s."""
