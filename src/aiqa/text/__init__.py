"""Language facts: the layout of lines and sentences, Korean and English analysis, question cues, token counts."""
