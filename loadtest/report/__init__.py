"""Writers of one ``Report``: HTML, markdown, time-series CSV; and ``compare`` of two."""
