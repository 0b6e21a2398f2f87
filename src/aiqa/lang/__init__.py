"""Language rules: morphemes, keyword tokens, names and question cues, one module per language."""
