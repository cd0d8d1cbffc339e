"""The models Sweedle's services load: which ones the settings need, where they are, fetching
and checking them (``sweedle models``). Replicas never download: they load what is on disk."""
