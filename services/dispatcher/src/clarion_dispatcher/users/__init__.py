"""Users as the fan-out sees them: a cache of the directory's profiles, kept coherent by
its announcements of which users changed."""
