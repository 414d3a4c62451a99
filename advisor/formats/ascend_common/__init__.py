"""What the Ascend formats share: the rank-folder layout, rank discovery, metadata, CSV/JSON/SQLite
reading. Not a format itself: ascend_text and ascend_db discover through it."""
