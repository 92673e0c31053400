//! Aligned text tables, and the one number format they share.

use std::io::{self, Write};

/// Milliseconds with one decimal, or `0`.
pub(crate) fn ms(nanos: u64) -> String {
    if nanos == 0 {
        "0".to_string()
    } else {
        format!("{:.1}ms", nanos as f64 / 1e6)
    }
}

/// Writes rows as aligned columns: the first left-aligned, the rest right-aligned.
pub(crate) fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> io::Result<()> {
    write_table_left(out, rows, 1)
}

/// Writes rows as aligned columns: the first `left` left-aligned, the rest right-aligned.
pub(crate) fn write_table_left(
    out: &mut dyn Write,
    rows: &[Vec<String>],
    left: usize,
) -> io::Result<()> {
    write_columns(out, rows, &|c| c < left)
}

/// Writes rows as aligned columns, two spaces apart: column `c` left-aligned when
/// `left(c)`, right-aligned otherwise. Trailing spaces are trimmed.
pub(crate) fn write_columns(
    out: &mut dyn Write,
    rows: &[Vec<String>],
    left: &dyn Fn(usize) -> bool,
) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if left(c) {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                line.push_str(&format!("{cell:>w$}", w = widths[c]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
