"""The on-disk format of an index version and its two search structures: dense vectors and BM25+ postings."""
