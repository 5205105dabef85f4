"""Plain-text tables: the one formatter behind every table fastnn prints."""

__all__ = ["format_table"]


def format_table(rows, align="l", rule=False):
    """`rows` (the header first, then the body, all strings) as aligned columns.

    Parameters
    ----------
    rows : sequence of sequences of str
    align : str
        One letter per column, ``"l"`` (left) or ``"r"`` (right); a single letter
        applies to every column.
    rule : bool
        Underline each header cell with dashes.

    Returns
    -------
    str
        The lines, columns two spaces apart, without trailing spaces.
    """
    rows = [list(r) for r in rows]
    n = len(rows[0])
    align = align * n if len(align) == 1 else align
    if len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of 'l' or 'r' per column ({n}), got {align!r}")
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    if rule:
        rows.insert(1, ["-" * w for w in widths])
    return "\n".join("  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                               for c, w, a in zip(r, widths, align)).rstrip() for r in rows)
