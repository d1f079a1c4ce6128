"""Operations: health, metrics and diagnostics."""
